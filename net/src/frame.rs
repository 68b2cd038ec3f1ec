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

/// A message encoded straight into a frame, without a buffer of its own.
pub trait Body {
    /// Its encoded length.
    fn body_len(&self) -> usize;
    /// Appends its encoding.
    fn encode_body(&self, out: &mut BytesMut);
}

impl<M: Message> Body for M {
    fn body_len(&self) -> usize {
        self.encoded_len()
    }

    fn encode_body(&self, out: &mut BytesMut) {
        self.encode_raw(out);
    }
}

/// Appends the frame of a successful response to request `request_id` whose payload is
/// `body`: the same bytes as [`encode`] of `Envelope { request_id, method, payload: body
/// encoded, status: OK, is_response: true }`, with the body encoded in place — the response
/// is copied once, into `out`.
pub fn encode_response(request_id: u64, method: i32, body: &dyn Body, out: &mut BytesMut) {
    use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
    let body_len = body.body_len();
    let mut len = 0;
    if request_id != 0 {
        len += key_len(1) + encoded_len_varint(request_id);
    }
    if method != 0 {
        len += key_len(2) + encoded_len_varint(method as i64 as u64);
    }
    if body_len != 0 {
        len += key_len(3) + encoded_len_varint(body_len as u64) + body_len;
    }
    // status: Some(OK) (an empty message) and is_response: true.
    len += key_len(4) + 1 + key_len(5) + 1;
    out.reserve(PREFIX + len);
    out.put_u32(len as u32);
    if request_id != 0 {
        encode_key(1, WireType::Varint, out);
        encode_varint(request_id, out);
    }
    if method != 0 {
        encode_key(2, WireType::Varint, out);
        encode_varint(method as i64 as u64, out);
    }
    if body_len != 0 {
        encode_key(3, WireType::LengthDelimited, out);
        encode_varint(body_len as u64, out);
        body.encode_body(out);
    }
    encode_key(4, WireType::LengthDelimited, out);
    encode_varint(0, out);
    encode_key(5, WireType::Varint, out);
    encode_varint(1, out);
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

    #[test]
    fn responses_encoded_in_place_are_the_envelopes_bytes() {
        use crate::proto::kvrpcpb::RawGetResponse;
        use crate::proto::rpcpb::{Method, Status, StatusCode};
        let bodies =
            [RawGetResponse { value: Bytes::from(vec![7u8; 1000]), ..Default::default() }, RawGetResponse::default()];
        for (id, body) in [(1u64, &bodies[0]), (u64::MAX, &bodies[0]), (0, &bodies[1]), (300, &bodies[1])] {
            let env = Envelope {
                request_id: id,
                method: Method::RawGet as i32,
                payload: body.encode_to_vec().into(),
                status: Some(Status { code: StatusCode::Ok as i32, message: String::new() }),
                is_response: true,
            };
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            encode(&env, &mut a);
            encode_response(id, Method::RawGet as i32, body, &mut b);
            assert_eq!(a, b, "request {id}");
            assert_eq!(parse(&mut b, DEFAULT_MAX_FRAME).unwrap(), env);
        }
    }
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
