//! The frame codec. It knows only bytes: no sockets, no tasks (the mini-redis split).
//!
//! ```text
//! frame = length:u32 (big endian) | Envelope (prost)
//! ```
//!
//! [`check`] tells whether a buffer starts with a whole frame (and how long it is) without
//! decoding it; [`parse`] decodes one. A length over the configured maximum is an error at
//! once — before any byte of the body is buffered — so a hostile peer cannot make us allocate.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::proto::rpcpb::Envelope;

/// Bytes of the length prefix.
pub const PREFIX: usize = 4;
/// The default largest frame: 16 MiB (snapshot chunks are smaller).
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Why a buffer does not (yet) hold a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// More bytes are needed.
    #[error("incomplete frame")]
    Incomplete,
    /// The length prefix exceeds the maximum; the connection must be closed.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not a valid envelope; the connection must be closed.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// If `buf` starts with a complete frame of at most `max` body bytes, its total length.
pub fn check(buf: &[u8], max: usize) -> Result<usize, FrameError> {
    if buf.len() < PREFIX {
        return Err(FrameError::Incomplete);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if buf.len() < PREFIX + len {
        return Err(FrameError::Incomplete);
    }
    Ok(PREFIX + len)
}

/// Takes one frame off the front of `buf` if a whole one is there.
pub fn parse(buf: &mut BytesMut, max: usize) -> Result<Envelope, FrameError> {
    let total = check(buf, max)?;
    let mut frame = buf.split_to(total).freeze();
    frame.advance(PREFIX);
    decode_body(frame)
}

/// Decodes a frame body.
pub fn decode_body(body: Bytes) -> Result<Envelope, FrameError> {
    Envelope::decode(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Appends the frame of `env` to `out`.
pub fn encode(env: &Envelope, out: &mut BytesMut) {
    let len = env.encoded_len();
    out.reserve(PREFIX + len);
    out.put_u32(len as u32);
    // Encoding into a BytesMut with enough room cannot fail.
    let _ = env.encode(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rpcpb::{Method, Status, StatusCode};
    use proptest::prelude::*;

    fn env(id: u64, payload: Vec<u8>) -> Envelope {
        Envelope {
            request_id: id,
            method: Method::PdTso as i32,
            payload: payload.into(),
            status: Some(Status { code: StatusCode::Ok as i32, message: String::new() }),
            is_response: id.is_multiple_of(2),
        }
    }

    #[test]
    fn round_trips() {
        let mut buf = BytesMut::new();
        for i in 0..10u64 {
            encode(&env(i, vec![i as u8; i as usize * 100]), &mut buf);
        }
        for i in 0..10u64 {
            assert_eq!(parse(&mut buf, DEFAULT_MAX_FRAME).unwrap(), env(i, vec![i as u8; i as usize * 100]));
        }
        assert!(buf.is_empty());
        assert_eq!(parse(&mut buf, DEFAULT_MAX_FRAME), Err(FrameError::Incomplete));
    }

    #[test]
    fn oversized_prefix_is_refused_before_buffering() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(parse(&mut buf, 1024), Err(FrameError::TooLarge { len: u32::MAX as usize, max: 1024 }));
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let mut full = BytesMut::new();
        encode(&env(7, b"hello world".to_vec()), &mut full);
        for cut in 0..full.len() {
            let mut b = BytesMut::from(&full[..cut]);
            assert_eq!(parse(&mut b, DEFAULT_MAX_FRAME), Err(FrameError::Incomplete), "cut {cut}");
        }
    }

    proptest! {
        /// Random bytes never panic: they parse, are incomplete, too large or malformed.
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048), max in 0usize..4096) {
            let mut buf = BytesMut::from(&data[..]);
            while parse(&mut buf, max).is_ok() {}
        }

        /// A valid frame followed by garbage yields the frame, then an error or incomplete.
        #[test]
        fn garbage_after_a_valid_frame(payload in proptest::collection::vec(any::<u8>(), 0..512),
                                       garbage in proptest::collection::vec(any::<u8>(), 1..512)) {
            let mut buf = BytesMut::new();
            encode(&env(1, payload.clone()), &mut buf);
            buf.extend_from_slice(&garbage);
            prop_assert_eq!(parse(&mut buf, DEFAULT_MAX_FRAME).unwrap(), env(1, payload));
            let _ = parse(&mut buf, DEFAULT_MAX_FRAME);
        }

        /// Every envelope round-trips.
        #[test]
        fn envelopes_round_trip(id in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let mut buf = BytesMut::new();
            encode(&env(id, payload.clone()), &mut buf);
            prop_assert_eq!(parse(&mut buf, DEFAULT_MAX_FRAME).unwrap(), env(id, payload));
        }
    }
}
