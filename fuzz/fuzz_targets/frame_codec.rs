//! The frame codec (`net::frame`) on arbitrary bytes and an arbitrary maximum frame size.
//!
//! Input: `max selector:u32 | flags:u8 | cut:u32 | bytes`. Invariants:
//! * nothing panics;
//! * `check` and `parse` agree: same error, or `parse` consumes exactly the `check`ed length;
//! * a frame that parses re-encodes to a frame that parses to an equal envelope, and
//!   re-encoding is stable;
//! * a stream of frames parsed one by one, re-encoded back to back, parses back the same;
//! * every strict prefix of a valid frame is `Incomplete`, never an error — unless its length
//!   prefix is over the maximum, which is `TooLarge` as soon as the 4 prefix bytes are in.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use net::frame::{check, decode_body, encode, parse, FrameError, DEFAULT_MAX_FRAME, PREFIX};
use net::proto::rpcpb::{Envelope, Status};
use percore_fuzz::Input;

/// `check` and `parse` of `buf` agree; returns the parsed envelope, if any.
fn parse_agrees(buf: &[u8], max: usize) -> Option<Envelope> {
    let checked = check(buf, max);
    let mut b = BytesMut::from(buf);
    let parsed = parse(&mut b, max);
    match (&checked, &parsed) {
        (Ok(n), Ok(env)) => {
            assert_eq!(b.len(), buf.len() - n, "parse consumed a different length than check said");
            assert_eq!(decode_body(Bytes::copy_from_slice(&buf[PREFIX..*n])).as_ref(), Ok(env));
        }
        (Ok(n), Err(FrameError::Malformed(_))) => {
            assert_eq!(b.len(), buf.len() - n, "a malformed frame is consumed whole");
            assert!(decode_body(Bytes::copy_from_slice(&buf[PREFIX..*n])).is_err());
        }
        (Err(c), Err(p)) if c == p => {
            assert_eq!(b.len(), buf.len(), "a frame not taken must not consume bytes");
            if buf.len() >= PREFIX {
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                let want = if len > max { FrameError::TooLarge { len, max } } else { FrameError::Incomplete };
                assert_eq!(c, &want);
            } else {
                assert_eq!(c, &FrameError::Incomplete);
            }
        }
        _ => panic!("check says {checked:?} but parse says {parsed:?}"),
    }
    parsed.ok()
}

/// The encoding of `env` parses back to it, and so does every strict prefix report
/// `Incomplete` (or `TooLarge` for a maximum below the body length).
fn round_trip(env: &Envelope, max: usize, cut: usize) {
    let mut frame = BytesMut::new();
    encode(env, &mut frame);
    let body = frame.len() - PREFIX;
    assert_eq!(body, prost::Message::encoded_len(env));
    assert_eq!(check(&frame, usize::MAX), Ok(frame.len()));
    let back = parse_agrees(&frame, usize::MAX).expect("an encoded frame parses");
    assert_eq!(&back, env, "re-encoded frame parses to a different envelope");
    let mut again = BytesMut::new();
    encode(&back, &mut again);
    assert_eq!(again, frame, "re-encoding is not stable");
    // Against the fuzzed maximum: whole frame and prefixes.
    let too_large = body > max;
    let expect_full = if too_large { Err(FrameError::TooLarge { len: body, max }) } else { Ok(frame.len()) };
    assert_eq!(check(&frame, max), expect_full);
    for n in [0, 1, PREFIX - 1, PREFIX, cut % frame.len(), frame.len() - 1].into_iter().filter(|&n| n < frame.len()) {
        let prefix = &frame[..n];
        let want =
            if too_large && n >= PREFIX { FrameError::TooLarge { len: body, max } } else { FrameError::Incomplete };
        assert_eq!(check(prefix, max), Err(want.clone()), "prefix of {n} bytes");
        assert_eq!(parse_agrees(prefix, max), None);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Input(data);
    let raw = r.u32();
    let flags = r.u8();
    let cut = r.u32() as usize;
    let max = match flags & 3 {
        0 => raw as usize % 64,
        1 => raw as usize,
        2 => DEFAULT_MAX_FRAME,
        _ => usize::MAX,
    };
    let bytes = r.rest();

    // The bytes as a stream: frames one by one until one does not parse.
    let mut stream = BytesMut::from(bytes);
    let mut frames = Vec::new();
    loop {
        let before = stream.len();
        let checked = check(&stream, max);
        match parse(&mut stream, max) {
            Ok(env) => frames.push(env),
            Err(e) => {
                assert!(checked.is_ok() || checked == Err(e.clone()), "check {checked:?}, parse {e:?}");
                break;
            }
        }
        assert!(stream.len() < before, "parse succeeded without consuming");
    }
    let mut re = BytesMut::new();
    for env in &frames {
        encode(env, &mut re);
    }
    for env in &frames {
        assert_eq!(parse(&mut re, usize::MAX).as_ref(), Ok(env));
    }
    assert!(re.is_empty());

    // The bytes as one buffer, and each frame found.
    if let Some(env) = parse_agrees(bytes, max) {
        round_trip(&env, max, cut);
    }
    for env in &frames {
        round_trip(env, max, cut);
    }

    // An envelope made of the input's fields, the bytes as its payload.
    let env = Envelope {
        request_id: u64::from(raw) << 32 | cut as u64,
        method: (cut % 400) as i32,
        payload: Bytes::copy_from_slice(bytes),
        status: (flags & 4 != 0).then(|| Status {
            code: i32::from(flags >> 3),
            message: String::from_utf8_lossy(&bytes[..bytes.len().min(16)]).into_owned(),
        }),
        is_response: flags & 128 != 0,
    };
    round_trip(&env, max, cut);
});
