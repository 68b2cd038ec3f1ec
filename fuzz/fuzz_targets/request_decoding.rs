//! The input as the request payload of every method of the RPC table (`rpcpb.Method`):
//! decoding into the method's request message never panics, and a message that decodes
//! round-trips (re-encoded, it decodes to an equal message of the same length).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use net::proto::rpcpb::{Envelope, Method};
use percore_fuzz::requests::{table, Check};
use prost::Message;

static TABLE: OnceLock<Vec<(Method, Check)>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let table = TABLE.get_or_init(table);
    for (_, check) in table {
        let _ = check(data);
    }
    // The same bytes as the payload of an envelope for a method picked by the first byte:
    // the server's path, frame body to request.
    if let Some((&pick, payload)) = data.split_first() {
        let (method, check) = table[usize::from(pick) % table.len()];
        let env = Envelope { method: method as i32, payload: payload.to_vec().into(), ..Default::default() };
        let body = env.encode_to_vec();
        let decoded = Envelope::decode(&body[..]).expect("an encoded envelope decodes");
        assert_eq!(Method::from_i32(decoded.method), Some(method));
        assert_eq!(check(&decoded.payload).is_ok(), check(payload).is_ok());
    }
});
