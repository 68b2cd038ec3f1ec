//! The RESP2 codec: commands out (arrays of bulk strings), replies in. It knows only bytes:
//! [`parse`] takes one complete reply off the front of a buffer or says
//! [`ParseError::Incomplete`] (read more and call again), like mini-redis's frame codec.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Simple(String),
    /// `-ERR …`.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$5\r\nhello` or `$-1` (nil).
    Bulk(Option<Bytes>),
    /// `*2 …` or `*-1` (nil).
    Array(Option<Vec<Reply>>),
}

/// Why a reply could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not all of it has arrived yet.
    Incomplete,
    /// Not RESP.
    Invalid(String),
}

/// Largest bulk string accepted (Redis's own limit).
const MAX_BULK: usize = 512 << 20;
/// Deepest nesting of arrays accepted.
const MAX_DEPTH: usize = 16;

/// Appends the command `args` (name first) to `out`.
pub fn encode(out: &mut BytesMut, args: &[&[u8]]) {
    out.put_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.put_slice(format!("${}\r\n", a.len()).as_bytes());
        out.put_slice(a);
        out.put_slice(b"\r\n");
    }
}

/// Takes one complete reply off the front of `buf`.
pub fn parse(buf: &mut BytesMut) -> Result<Reply, ParseError> {
    let (reply, used) = parse_at(buf, 0, 0)?;
    buf.advance(used);
    Ok(reply)
}

/// The line starting at `pos` (without CRLF) and the position after its CRLF.
fn line(b: &[u8], pos: usize) -> Result<(&[u8], usize), ParseError> {
    match b[pos..].windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok((&b[pos..pos + i], pos + i + 2)),
        None => Err(ParseError::Incomplete),
    }
}

fn number(s: &[u8]) -> Result<i64, ParseError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ParseError::Invalid(format!("bad number {:?}", String::from_utf8_lossy(s))))
}

fn parse_at(b: &[u8], pos: usize, depth: usize) -> Result<(Reply, usize), ParseError> {
    if pos >= b.len() {
        return Err(ParseError::Incomplete);
    }
    if depth > MAX_DEPTH {
        return Err(ParseError::Invalid("arrays nested too deep".into()));
    }
    let (text, next) = line(b, pos + 1)?;
    let text_string = || String::from_utf8_lossy(text).into_owned();
    match b[pos] {
        b'+' => Ok((Reply::Simple(text_string()), next)),
        b'-' => Ok((Reply::Error(text_string()), next)),
        b':' => Ok((Reply::Integer(number(text)?), next)),
        b'$' => {
            let len = number(text)?;
            if len < 0 {
                return Ok((Reply::Bulk(None), next));
            }
            let len = len as usize;
            if len > MAX_BULK {
                return Err(ParseError::Invalid(format!("bulk string of {len} bytes")));
            }
            if b.len() < next + len + 2 {
                return Err(ParseError::Incomplete);
            }
            if &b[next + len..next + len + 2] != b"\r\n" {
                return Err(ParseError::Invalid("bulk string without CRLF".into()));
            }
            Ok((Reply::Bulk(Some(Bytes::copy_from_slice(&b[next..next + len]))), next + len + 2))
        }
        b'*' => {
            let n = number(text)?;
            if n < 0 {
                return Ok((Reply::Array(None), next));
            }
            let mut items = Vec::with_capacity((n as usize).min(1024));
            let mut at = next;
            for _ in 0..n {
                let (item, after) = parse_at(b, at, depth + 1)?;
                items.push(item);
                at = after;
            }
            Ok((Reply::Array(Some(items)), at))
        }
        other => Err(ParseError::Invalid(format!("unexpected reply type byte {other:#04x}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        let mut out = BytesMut::new();
        encode(&mut out, &[b"SET", b"k", b"v\r\n"]);
        assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n");
    }

    #[test]
    fn parses_every_reply_type_and_leaves_the_rest() {
        let mut buf = BytesMut::from(
            &b"+OK\r\n-ERR wrong\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n$-1\r\n*-1\r\n$0\r\n\r\n+PART"[..],
        );
        let want = [
            Reply::Simple("OK".into()),
            Reply::Error("ERR wrong".into()),
            Reply::Integer(42),
            Reply::Bulk(Some(Bytes::from("hello"))),
            Reply::Bulk(None),
            Reply::Array(Some(vec![Reply::Bulk(Some(Bytes::from("a"))), Reply::Bulk(None)])),
            Reply::Array(None),
            Reply::Bulk(Some(Bytes::new())),
        ];
        for w in want {
            assert_eq!(parse(&mut buf).unwrap(), w);
        }
        assert_eq!(parse(&mut buf), Err(ParseError::Incomplete));
        assert_eq!(&buf[..], b"+PART");
    }

    #[test]
    fn partial_replies_are_incomplete_and_consume_nothing() {
        let whole = b"*2\r\n$5\r\nhello\r\n:7\r\n";
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(parse(&mut buf), Err(ParseError::Incomplete), "cut at {cut}");
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn garbage_is_invalid() {
        for bad in [&b"?x\r\n"[..], b":abc\r\n", b"$3\r\nabcde\r\n", b"$x\r\n"] {
            assert!(matches!(parse(&mut BytesMut::from(bad)), Err(ParseError::Invalid(_))), "{bad:?}");
        }
        let deep = "*1\r\n".repeat(40) + ":1\r\n";
        assert!(matches!(parse(&mut BytesMut::from(deep.as_bytes())), Err(ParseError::Invalid(_))));
    }
}
