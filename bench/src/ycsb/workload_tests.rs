//! Workload loading: presets, files, overrides, and every kind of error.

use std::io::Write;

use super::*;

fn from_text(text: &str) -> Result<Workload, WorkloadError> {
    Workload::from_properties("t", &parse(text, "w.properties").unwrap())
}

fn err(text: &str) -> String {
    from_text(text).unwrap_err().to_string()
}

#[test]
fn presets_match_ycsb_core_workloads() {
    // (letter, read, update, insert, scan, rmw, distribution)
    let table = [
        ("a", 0.5, 0.5, 0.0, 0.0, 0.0, RequestDistribution::Zipfian),
        ("b", 0.95, 0.05, 0.0, 0.0, 0.0, RequestDistribution::Zipfian),
        ("c", 1.0, 0.0, 0.0, 0.0, 0.0, RequestDistribution::Zipfian),
        ("d", 0.95, 0.0, 0.05, 0.0, 0.0, RequestDistribution::Latest),
        ("e", 0.0, 0.0, 0.05, 0.95, 0.0, RequestDistribution::Zipfian),
        ("F", 0.5, 0.0, 0.0, 0.0, 0.5, RequestDistribution::Zipfian),
    ];
    for (letter, r, u, i, s, rmw, dist) in table {
        let w = Workload::load(letter, &[]).unwrap();
        assert_eq!(w.op_weights(), [r, u, i, s, rmw], "workload {letter}");
        assert_eq!(w.requestdistribution, dist, "workload {letter}");
        assert_eq!((w.recordcount, w.operationcount, w.fieldcount, w.fieldlength), (1000, 1000, 10, 100));
        assert_eq!(w.insertorder, InsertOrder::Hashed);
    }
    let e = Workload::load("e", &[]).unwrap();
    assert_eq!((e.minscanlength, e.maxscanlength, e.scanlengthdistribution), (1, 100, LengthDistribution::Uniform));
}

#[test]
fn files_and_overrides_apply_in_order() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "# my workload\nrecordcount=5000\noperationcount = 7\nreadproportion=0.2\nupdateproportion=0.8")
        .unwrap();
    writeln!(f, "requestdistribution=uniform\nfieldcount=4\nfieldlength=25\ninsertorder=ordered\nzeropadding=10")
        .unwrap();
    let path = f.path().to_str().unwrap().to_string();
    let overrides =
        [Property::new("recordcount", 200, "--records"), Property::parse_assignment("insertstart=50").unwrap()];
    let w = Workload::load(&path, &overrides).unwrap();
    assert_eq!(w.name, path);
    assert_eq!((w.recordcount, w.operationcount, w.insertstart, w.insertcount), (200, 7, 50, 150));
    assert_eq!((w.fieldcount, w.fieldlength), (4, 25));
    assert_eq!(
        (w.insertorder, w.zeropadding, w.requestdistribution),
        (InsertOrder::Ordered, 10, RequestDistribution::Uniform)
    );
    // Keys not given keep YCSB's defaults.
    assert_eq!((w.maxscanlength, w.readallfields, w.writeallfields), (1000, true, false));
}

#[test]
fn unknown_keys_are_errors_with_hints() {
    let cases = [
        ("recordcont=10\n", "w.properties:1: unknown property \"recordcont\"; did you mean recordcount?"),
        ("threadcount=8\n", "unknown property \"threadcount\"; use --threads"),
        ("maxexecutiontime=60\n", "use --duration"),
        ("hotspotdatafraction=0.2\n", "a YCSB property percore-bench does not support"),
        ("\n\ncompletelydifferent=1\n", "w.properties:3: unknown property \"completelydifferent\""),
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(got.contains(want), "{text:?}: {got}");
    }
    assert!(!err("zzz=1\n").contains("did you mean"), "no suggestion for a far-off key");
}

#[test]
fn bad_values_are_errors_naming_the_line() {
    let cases = [
        ("recordcount=ten\n", "w.properties:1: recordcount = \"ten\": expected a non-negative integer"),
        ("recordcount=-5\n", "expected a non-negative integer"),
        ("readproportion=1.5\n", "readproportion = \"1.5\": expected a number between 0 and 1"),
        ("readproportion=abc\n", "expected a number between 0 and 1"),
        ("requestdistribution=pareto\n", "expected uniform, zipfian or latest"),
        ("requestdistribution=hotspot\n", "not supported here"),
        ("scanlengthdistribution=constant\n", "expected uniform or zipfian"),
        ("fieldlengthdistribution=histogram\n", "expected constant, uniform or zipfian"),
        ("insertorder=random\n", "expected hashed or ordered"),
        ("readallfields=yes\n", "expected true or false"),
        ("workload=site.ycsb.workloads.TimeSeriesWorkload\n", "the only workload percore-bench runs"),
        ("\nfieldcount=\n", "w.properties:2: fieldcount = \"\": expected a non-negative integer"),
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(got.contains(want), "{text:?}: {got}");
    }
    assert!(from_text("workload=com.yahoo.ycsb.workloads.CoreWorkload\n").is_ok());
}

#[test]
fn inconsistent_workloads_are_errors() {
    let cases = [
        ("readproportion=0.5\nupdateproportion=0.6\n", "add up to 1.1"),
        ("readproportion=0\nupdateproportion=0\n", "add up to 0"),
        ("recordcount=0\n", "recordcount must be at least 1"),
        ("recordcount=100\ninsertstart=50\ninsertcount=60\n", "insertstart (50) + insertcount (60)"),
        ("fieldcount=0\n", "fieldcount (0)"),
        ("fieldlength=100000000\n", "at most 8388608 bytes"),
        ("minscanlength=10\nmaxscanlength=5\n", "minscanlength (10)"),
        ("fieldlength=10\nminfieldlength=20\n", "minfieldlength (20)"),
        ("zeropadding=100\n", "zeropadding (100)"),
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(got.starts_with("invalid workload: ") && got.contains(want), "{text:?}: {got}");
    }
}

#[test]
fn missing_files_are_errors() {
    let e = Workload::load("/nonexistent/workload-x", &[]).unwrap_err();
    assert!(matches!(e, WorkloadError::Read { .. }), "{e}");
    assert!(e.to_string().contains("standard workloads are a, b, c, d, e, f"), "{e}");
}
