//! The YCSB core workload: its properties with YCSB's defaults, the six standard workloads
//! A–F as properties text (exactly what YCSB's `workloads/workload[a-f]` files say), and
//! validation with errors that name the offending line.
//!
//! | workload | mix | request distribution |
//! |---|---|---|
//! | A | 50 % read, 50 % update | zipfian |
//! | B | 95 % read, 5 % update | zipfian |
//! | C | 100 % read | zipfian |
//! | D | 95 % read, 5 % insert | latest |
//! | E | 95 % scan (1–100 records), 5 % insert | zipfian |
//! | F | 50 % read, 50 % read-modify-write | zipfian |
//!
//! Records are stored as one value (the fields concatenated) under the key, so
//! `readallfields`/`writeallfields` are accepted but every read returns and every update or
//! read-modify-write writes the whole record (see the README's "YCSB on a key-value store").

use serde::{Deserialize, Serialize};

use super::properties::{parse, Hint, Property, WorkloadError};

/// How record keys are picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestDistribution {
    /// Every record equally likely.
    Uniform,
    /// Scrambled zipfian, θ = 0.99.
    Zipfian,
    /// Skewed towards the newest inserts.
    Latest,
}

/// A length distribution (field and scan lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthDistribution {
    /// Always the maximum.
    Constant,
    /// Uniform between the minimum and the maximum.
    Uniform,
    /// Zipfian between the minimum and the maximum (short ones most likely).
    Zipfian,
}

/// The order in which the load phase inserts records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InsertOrder {
    /// Keys are `user` + FNV hash of the ordinal: inserts land all over the key space.
    Hashed,
    /// Keys are `user` + the ordinal.
    Ordered,
}

/// A core workload, with YCSB's property names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// `a`…`f` or the file it was read from.
    pub name: String,
    /// Records loaded (and the key space of the run phase).
    pub recordcount: u64,
    /// Operations of the run phase (unless `--duration` bounds it instead).
    pub operationcount: u64,
    /// Fields per record.
    pub fieldcount: u64,
    /// Bytes per field (the maximum, for non-constant distributions).
    pub fieldlength: u64,
    /// The smallest field, for non-constant distributions.
    pub minfieldlength: u64,
    /// How field lengths vary.
    pub fieldlengthdistribution: LengthDistribution,
    /// Accepted for compatibility; reads always read the whole record.
    pub readallfields: bool,
    /// Accepted for compatibility; writes always write the whole record.
    pub writeallfields: bool,
    /// Share of reads.
    pub readproportion: f64,
    /// Share of updates.
    pub updateproportion: f64,
    /// Share of inserts.
    pub insertproportion: f64,
    /// Share of scans.
    pub scanproportion: f64,
    /// Share of read-modify-writes.
    pub readmodifywriteproportion: f64,
    /// How keys are picked.
    pub requestdistribution: RequestDistribution,
    /// Digits the key's number is zero-padded to.
    pub zeropadding: u64,
    /// Hashed or ordered keys.
    pub insertorder: InsertOrder,
    /// First ordinal this client loads.
    pub insertstart: u64,
    /// Ordinals this client loads (`recordcount - insertstart` by default).
    pub insertcount: u64,
    /// Shortest scan.
    pub minscanlength: u64,
    /// Longest scan.
    pub maxscanlength: u64,
    /// How scan lengths vary (`uniform` or `zipfian`).
    pub scanlengthdistribution: LengthDistribution,
    /// Accepted for compatibility; the key space is not divided by table.
    pub table: String,
}

/// The lines every standard workload file starts with.
macro_rules! common {
    () => {
        "recordcount=1000\noperationcount=1000\nworkload=site.ycsb.workloads.CoreWorkload\nreadallfields=true\n"
    };
}

/// The properties text of standard workload `letter` (`a`…`f`, any case).
pub fn preset(letter: &str) -> Option<&'static str> {
    Some(match letter.to_ascii_lowercase().as_str() {
        "a" => concat!(
            common!(),
            "readproportion=0.5\nupdateproportion=0.5\nscanproportion=0\ninsertproportion=0\n",
            "requestdistribution=zipfian\n"
        ),
        "b" => concat!(
            common!(),
            "readproportion=0.95\nupdateproportion=0.05\nscanproportion=0\ninsertproportion=0\n",
            "requestdistribution=zipfian\n"
        ),
        "c" => concat!(
            common!(),
            "readproportion=1\nupdateproportion=0\nscanproportion=0\ninsertproportion=0\n",
            "requestdistribution=zipfian\n"
        ),
        "d" => concat!(
            common!(),
            "readproportion=0.95\nupdateproportion=0\nscanproportion=0\ninsertproportion=0.05\n",
            "requestdistribution=latest\n"
        ),
        "e" => concat!(
            common!(),
            "readproportion=0\nupdateproportion=0\nscanproportion=0.95\ninsertproportion=0.05\n",
            "requestdistribution=zipfian\nmaxscanlength=100\nscanlengthdistribution=uniform\n"
        ),
        "f" => concat!(
            common!(),
            "readproportion=0.5\nupdateproportion=0\nscanproportion=0\ninsertproportion=0\n",
            "readmodifywriteproportion=0.5\nrequestdistribution=zipfian\n"
        ),
        _ => return None,
    })
}

impl Default for Workload {
    /// YCSB's `CoreWorkload` defaults (with the 1000-record, 1000-operation size of its
    /// workload files).
    fn default() -> Self {
        Workload {
            name: "default".into(),
            recordcount: 1000,
            operationcount: 1000,
            fieldcount: 10,
            fieldlength: 100,
            minfieldlength: 1,
            fieldlengthdistribution: LengthDistribution::Constant,
            readallfields: true,
            writeallfields: false,
            readproportion: 0.95,
            updateproportion: 0.05,
            insertproportion: 0.0,
            scanproportion: 0.0,
            readmodifywriteproportion: 0.0,
            requestdistribution: RequestDistribution::Uniform,
            zeropadding: 1,
            insertorder: InsertOrder::Hashed,
            insertstart: 0,
            insertcount: 1000,
            minscanlength: 1,
            maxscanlength: 1000,
            scanlengthdistribution: LengthDistribution::Uniform,
            table: "usertable".into(),
        }
    }
}

/// The largest record accepted (fieldcount × fieldlength).
const MAX_RECORD_BYTES: u64 = 8 << 20;

impl Workload {
    /// Standard workload `spec` (`a`…`f`) or the properties file at path `spec`, then
    /// `overrides` in order (later ones win), validated.
    pub fn load(spec: &str, overrides: &[Property]) -> Result<Self, WorkloadError> {
        let (name, mut props) = match preset(spec) {
            Some(text) => (spec.to_ascii_lowercase(), parse(text, &format!("workload {spec}"))?),
            None => {
                let text = std::fs::read_to_string(spec).map_err(|e| WorkloadError::Read {
                    path: spec.to_string(),
                    reason: format!("{e} (standard workloads are a, b, c, d, e, f)"),
                })?;
                (spec.to_string(), parse(&text, spec)?)
            }
        };
        props.extend(overrides.iter().cloned());
        Self::from_properties(&name, &props)
    }

    /// Applies `props` in order to YCSB's defaults, then validates.
    pub fn from_properties(name: &str, props: &[Property]) -> Result<Self, WorkloadError> {
        let mut w = Workload { name: name.to_string(), ..Workload::default() };
        let mut insertcount = None;
        for p in props {
            w.apply(p, &mut insertcount)?;
        }
        w.insertcount = insertcount.unwrap_or(w.recordcount.saturating_sub(w.insertstart));
        w.validate()?;
        Ok(w)
    }

    fn apply(&mut self, p: &Property, insertcount: &mut Option<u64>) -> Result<(), WorkloadError> {
        match p.key.as_str() {
            "recordcount" => self.recordcount = count(p)?,
            "operationcount" => self.operationcount = count(p)?,
            "fieldcount" => self.fieldcount = count(p)?,
            "fieldlength" => self.fieldlength = count(p)?,
            "minfieldlength" => self.minfieldlength = count(p)?,
            "fieldlengthdistribution" => self.fieldlengthdistribution = length_distribution(p, true)?,
            "readallfields" => self.readallfields = boolean(p)?,
            "writeallfields" => self.writeallfields = boolean(p)?,
            "readproportion" => self.readproportion = proportion(p)?,
            "updateproportion" => self.updateproportion = proportion(p)?,
            "insertproportion" => self.insertproportion = proportion(p)?,
            "scanproportion" => self.scanproportion = proportion(p)?,
            "readmodifywriteproportion" => self.readmodifywriteproportion = proportion(p)?,
            "requestdistribution" => self.requestdistribution = request_distribution(p)?,
            "zeropadding" => self.zeropadding = count(p)?,
            "insertorder" => self.insertorder = insert_order(p)?,
            "insertstart" => self.insertstart = count(p)?,
            "insertcount" => *insertcount = Some(count(p)?),
            "minscanlength" => self.minscanlength = count(p)?,
            "maxscanlength" => self.maxscanlength = count(p)?,
            "scanlengthdistribution" => self.scanlengthdistribution = length_distribution(p, false)?,
            "table" => self.table = p.value.clone(),
            "workload" if p.value.ends_with(".CoreWorkload") || p.value == "CoreWorkload" => {}
            "workload" => return Err(bad(p, "site.ycsb.workloads.CoreWorkload, the only workload percore-bench runs")),
            _ => return Err(unknown(p)),
        }
        Ok(())
    }

    /// Checks the values together.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let invalid = |m: String| Err(WorkloadError::Invalid(m));
        if self.recordcount == 0 {
            return invalid("recordcount must be at least 1".into());
        }
        if self.insertcount == 0 || self.insertstart + self.insertcount > self.recordcount {
            return invalid(format!(
                "insertstart ({}) + insertcount ({}) must be between 1 and recordcount ({})",
                self.insertstart, self.insertcount, self.recordcount
            ));
        }
        if self.fieldcount == 0 || self.fieldlength == 0 || self.fieldcount * self.fieldlength > MAX_RECORD_BYTES {
            return invalid(format!(
                "fieldcount ({}) and fieldlength ({}) must be at least 1, and records at most {} bytes",
                self.fieldcount, self.fieldlength, MAX_RECORD_BYTES
            ));
        }
        if self.minfieldlength == 0 || self.minfieldlength > self.fieldlength {
            return invalid(format!("minfieldlength ({}) must be between 1 and fieldlength", self.minfieldlength));
        }
        if self.minscanlength == 0 || self.minscanlength > self.maxscanlength {
            return invalid(format!(
                "minscanlength ({}) must be at least 1 and at most maxscanlength ({})",
                self.minscanlength, self.maxscanlength
            ));
        }
        if self.zeropadding > 64 {
            return invalid(format!("zeropadding ({}) must be at most 64", self.zeropadding));
        }
        let sum: f64 = self.op_weights().iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return invalid(format!(
                "the operation proportions add up to {sum}, not 1 (read {} + update {} + insert {} + scan {} + readmodifywrite {})",
                self.readproportion,
                self.updateproportion,
                self.insertproportion,
                self.scanproportion,
                self.readmodifywriteproportion
            ));
        }
        Ok(())
    }

    /// Proportions in [`super::ops::OpKind`] order: read, update, insert, scan,
    /// read-modify-write.
    pub fn op_weights(&self) -> [f64; 5] {
        [
            self.readproportion,
            self.updateproportion,
            self.insertproportion,
            self.scanproportion,
            self.readmodifywriteproportion,
        ]
    }
}

fn bad(p: &Property, expected: &str) -> WorkloadError {
    WorkloadError::BadValue {
        origin: p.origin.clone(),
        key: p.key.clone(),
        value: p.value.clone(),
        expected: expected.into(),
    }
}

fn count(p: &Property) -> Result<u64, WorkloadError> {
    p.value.parse().map_err(|_| bad(p, "expected a non-negative integer"))
}

fn proportion(p: &Property) -> Result<f64, WorkloadError> {
    match p.value.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(bad(p, "expected a number between 0 and 1")),
    }
}

fn boolean(p: &Property) -> Result<bool, WorkloadError> {
    match p.value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(p, "expected true or false")),
    }
}

fn request_distribution(p: &Property) -> Result<RequestDistribution, WorkloadError> {
    match p.value.as_str() {
        "uniform" => Ok(RequestDistribution::Uniform),
        "zipfian" => Ok(RequestDistribution::Zipfian),
        "latest" => Ok(RequestDistribution::Latest),
        "hotspot" | "sequential" | "exponential" => {
            Err(bad(p, "YCSB's distribution, not supported here: use uniform, zipfian or latest"))
        }
        _ => Err(bad(p, "expected uniform, zipfian or latest")),
    }
}

fn length_distribution(p: &Property, constant_ok: bool) -> Result<LengthDistribution, WorkloadError> {
    match p.value.as_str() {
        "constant" if constant_ok => Ok(LengthDistribution::Constant),
        "uniform" => Ok(LengthDistribution::Uniform),
        "zipfian" => Ok(LengthDistribution::Zipfian),
        _ if constant_ok => Err(bad(p, "expected constant, uniform or zipfian")),
        _ => Err(bad(p, "expected uniform or zipfian")),
    }
}

fn insert_order(p: &Property) -> Result<InsertOrder, WorkloadError> {
    match p.value.as_str() {
        "hashed" => Ok(InsertOrder::Hashed),
        "ordered" => Ok(InsertOrder::Ordered),
        _ => Err(bad(p, "expected hashed or ordered")),
    }
}

/// Keys the workload understands (for "did you mean").
const KNOWN: &[&str] = &[
    "recordcount",
    "operationcount",
    "fieldcount",
    "fieldlength",
    "minfieldlength",
    "fieldlengthdistribution",
    "readallfields",
    "writeallfields",
    "readproportion",
    "updateproportion",
    "insertproportion",
    "scanproportion",
    "readmodifywriteproportion",
    "requestdistribution",
    "zeropadding",
    "insertorder",
    "insertstart",
    "insertcount",
    "minscanlength",
    "maxscanlength",
    "scanlengthdistribution",
    "table",
    "workload",
];

/// An unknown-key error with the best hint: the flag that replaces a YCSB client property,
/// a note for YCSB properties not supported, or the closest known key.
fn unknown(p: &Property) -> WorkloadError {
    let hint = match p.key.as_str() {
        "threadcount" => "use --threads".to_string(),
        "target" => "use --target".to_string(),
        "maxexecutiontime" => "use --duration".to_string(),
        "measurementtype" | "measurement.interval" | "status.interval" | "exporter" | "exportfile" => {
            "percore-bench always records HdrHistograms; see --progress, --json and --hdr".to_string()
        }
        "hotspotdatafraction"
        | "hotspotopnfraction"
        | "fieldlengthhistogram"
        | "dataintegrity"
        | "readallfieldsbyname"
        | "fieldnameprefix"
        | "core_workload_insertion_retry_limit"
        | "core_workload_insertion_retry_interval"
        | "exponential.percentile"
        | "exponential.frac" => "a YCSB property percore-bench does not support".to_string(),
        key => match KNOWN.iter().map(|k| (edit_distance(key, k), *k)).min() {
            Some((d, k)) if d <= 2 => format!("did you mean {k}?"),
            _ => String::new(),
        },
    };
    WorkloadError::UnknownKey { origin: p.origin.clone(), key: p.key.clone(), hint: Hint(hint) }
}

/// Levenshtein distance (keys are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
#[path = "workload_tests.rs"]
mod tests;
