//! Transactional modifications on the wire: the body of a `TxnWrite` raft command.

use net::proto::raft_cmdpb::{self, CmdType, TxnModify, TxnWriteRequest};

use super::snapshot::{Cf, Modify};

fn cf_number(cf: Cf) -> u32 {
    match cf {
        Cf::Default => 1,
        Cf::Lock => 2,
        Cf::Write => 3,
    }
}

fn cf_of(n: u32) -> Option<Cf> {
    match n {
        1 => Some(Cf::Default),
        2 => Some(Cf::Lock),
        3 => Some(Cf::Write),
        _ => None,
    }
}

/// The raft request that applies `modifies` in one write batch.
pub fn txn_write_request(modifies: &[Modify]) -> raft_cmdpb::Request {
    let modifies = modifies
        .iter()
        .map(|m| match m {
            Modify::Put { cf, key, value } => {
                TxnModify { cf: cf_number(*cf), key: key.clone().into(), value: value.clone().into(), delete: false }
            }
            Modify::Delete { cf, key } => {
                TxnModify { cf: cf_number(*cf), key: key.clone().into(), value: Default::default(), delete: true }
            }
        })
        .collect();
    raft_cmdpb::Request {
        cmd_type: CmdType::TxnWrite as i32,
        txn_write: Some(TxnWriteRequest { modifies }),
        ..Default::default()
    }
}

/// The modifications of a `TxnWrite` request; an unknown family or an empty key is an error.
pub fn decode_modifies(req: &TxnWriteRequest) -> Result<Vec<Modify>, String> {
    req.modifies
        .iter()
        .map(|m| {
            let cf = cf_of(m.cf).ok_or_else(|| format!("txn write: unknown column family {}", m.cf))?;
            if m.key.is_empty() {
                return Err("txn write: empty key".to_string());
            }
            Ok(match m.delete {
                true => Modify::Delete { cf, key: m.key.to_vec() },
                false => Modify::Put { cf, key: m.key.to_vec(), value: m.value.to_vec() },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifies_round_trip_and_bad_ones_are_refused() {
        let modifies = vec![
            Modify::Put { cf: Cf::Lock, key: vec![1, 2], value: vec![3] },
            Modify::Delete { cf: Cf::Write, key: vec![4] },
            Modify::Put { cf: Cf::Default, key: vec![5], value: vec![] },
        ];
        let req = txn_write_request(&modifies);
        assert_eq!(decode_modifies(req.txn_write.as_ref().unwrap()).unwrap(), modifies);
        let bad = TxnWriteRequest { modifies: vec![TxnModify { cf: 9, key: vec![1].into(), ..Default::default() }] };
        assert!(decode_modifies(&bad).unwrap_err().contains("unknown column family 9"));
        let empty = TxnWriteRequest { modifies: vec![TxnModify { cf: 2, ..Default::default() }] };
        assert!(decode_modifies(&empty).is_err());
    }
}
