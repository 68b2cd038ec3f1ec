//! Compiles `proto/*.proto` with prost. raft-rs's own `eraftpb` types are reused as they are.

fn main() {
    let protos = ["metapb", "errorpb", "kvrpcpb", "pdpb", "raft_serverpb", "rpcpb", "raft_cmdpb", "adminpb"]
        .map(|p| format!("proto/{p}.proto"));
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-changed=proto/eraftpb.proto");
    let mut config = prost_build::Config::new();
    config.extern_path(".eraftpb", "::raft::eraftpb");
    config.bytes(["."]);
    if let Err(e) = config.compile_protos(&protos, &["proto"]) {
        eprintln!("failed to compile the .proto files: {e}\nIs protoc installed? scripts/setup.sh installs it.");
        std::process::exit(1);
    }
}
