//! Bounded output capture: the first and last bytes of a stream, with a marker for what was
//! dropped in between. Memory is bounded by the cap whatever the command prints.

use std::collections::VecDeque;

use serde::Serialize;

/// A stream being captured.
#[derive(Debug, Clone)]
pub struct HeadTail {
    cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

/// A captured stream, as returned to callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Captured {
    /// The text (invalid UTF-8 replaced by U+FFFD), with a `[… N bytes omitted …]` marker when
    /// the middle was dropped.
    pub text: String,
    /// Bytes the stream carried in total.
    pub bytes: u64,
    /// Whether the middle was dropped.
    pub truncated: bool,
}

impl HeadTail {
    /// A capture keeping at most `cap` bytes (half from the start, half from the end).
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    /// Bytes seen so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Adds bytes.
    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let head_cap = self.cap / 2;
        if self.head.len() < head_cap {
            let n = (head_cap - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        let tail_cap = self.cap - head_cap;
        if tail_cap == 0 {
            return;
        }
        if data.len() >= tail_cap {
            self.tail.clear();
            self.tail.extend(&data[data.len() - tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(data);
    }

    /// The captured text.
    pub fn finish(&self) -> Captured {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let omitted = self.total - kept;
        let mut bytes = self.head.clone();
        if omitted > 0 {
            bytes.extend_from_slice(format!("\n[… {omitted} bytes omitted …]\n").as_bytes());
        }
        bytes.extend(self.tail.iter());
        Captured {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            bytes: self.total,
            truncated: omitted > 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut h = HeadTail::new(10);
        h.push(b"abc");
        h.push(b"de");
        let c = h.finish();
        assert_eq!(c.text, "abcde");
        assert!(!c.truncated);
        assert_eq!(c.bytes, 5);
    }

    #[test]
    fn long_output_keeps_head_and_tail() {
        let mut h = HeadTail::new(8);
        for chunk in [&b"0123"[..], b"456789", b"abcdefgh", b"XYZ"] {
            h.push(chunk);
        }
        let c = h.finish();
        assert!(c.truncated);
        assert_eq!(c.bytes, 21);
        assert_eq!(c.text, "0123\n[… 13 bytes omitted …]\nhXYZ");
    }

    #[test]
    fn tail_is_exactly_the_last_bytes() {
        let mut h = HeadTail::new(6);
        let data: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
        for c in data.chunks(7) {
            h.push(c);
        }
        let c = h.finish();
        let expect_head = String::from_utf8(data[..3].to_vec()).unwrap();
        let expect_tail = String::from_utf8(data[97..].to_vec()).unwrap();
        assert!(c.text.starts_with(&expect_head));
        assert!(c.text.ends_with(&expect_tail));
        assert!(c.text.contains("[… 94 bytes omitted …]"));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut h = HeadTail::new(100);
        h.push(&[0xff, b'o', b'k', 0xfe]);
        assert_eq!(h.finish().text, "\u{fffd}ok\u{fffd}");
    }
}
