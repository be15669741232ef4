//! A background process's output: the last bytes in a bounded ring, addressed by absolute
//! offset so a reader can ask for "everything since offset N" and learn what it missed.

use std::collections::VecDeque;

/// Combined stdout and stderr of one process, bounded.
#[derive(Debug)]
pub(crate) struct OutputLog {
    cap: usize,
    buf: VecDeque<u8>,
    /// Absolute offset of `buf[0]`.
    start: u64,
}

/// Bytes read from the log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Read {
    pub text: String,
    /// Bytes between the requested offset and the oldest byte still held.
    pub missed: u64,
    /// Offset after the last byte returned.
    pub next: u64,
}

impl OutputLog {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            buf: VecDeque::new(),
            start: 0,
        }
    }

    /// Offset after the newest byte.
    pub(crate) fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        let data = if data.len() > self.cap {
            self.start += (data.len() - self.cap) as u64;
            &data[data.len() - self.cap..]
        } else {
            data
        };
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.start += overflow as u64;
        self.buf.extend(data);
    }

    /// Up to `max` bytes from offset `from`.
    pub(crate) fn read_from(&self, from: u64, max: usize) -> Read {
        let missed = self.start.saturating_sub(from);
        let from = from.max(self.start);
        let skip = usize::try_from(from - self.start).unwrap_or(usize::MAX);
        let bytes: Vec<u8> = self.buf.iter().skip(skip).take(max).copied().collect();
        Read {
            next: from + bytes.len() as u64,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            missed,
        }
    }

    /// The last `lines` lines (within the held bytes).
    pub(crate) fn tail(&self, lines: usize) -> String {
        let (a, b) = self.buf.as_slices();
        let all: Vec<u8> = a.iter().chain(b).copied().collect();
        let body = all.strip_suffix(b"\n").unwrap_or(&all);
        let start = body
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, c)| **c == b'\n')
            .nth(lines.saturating_sub(1))
            .map_or(0, |(i, _)| i + 1);
        if lines == 0 {
            return String::new();
        }
        String::from_utf8_lossy(&all[start..]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_continue_where_they_left_off() {
        let mut l = OutputLog::new(100);
        l.push(b"hello ");
        let r = l.read_from(0, 1000);
        assert_eq!((r.text.as_str(), r.missed, r.next), ("hello ", 0, 6));
        l.push(b"world");
        let r = l.read_from(r.next, 1000);
        assert_eq!(r.text, "world");
        assert_eq!(l.read_from(r.next, 1000).text, "");
    }

    #[test]
    fn overflow_is_reported_as_missed() {
        let mut l = OutputLog::new(4);
        l.push(b"abcdef");
        l.push(b"gh");
        let r = l.read_from(0, 100);
        assert_eq!((r.text.as_str(), r.missed, r.next), ("efgh", 4, 8));
        assert_eq!(l.end(), 8);
    }

    #[test]
    fn tail_takes_the_last_lines() {
        let mut l = OutputLog::new(100);
        l.push(b"one\ntwo\nthree\nfour\n");
        assert_eq!(l.tail(2), "three\nfour\n");
        assert_eq!(l.tail(10), "one\ntwo\nthree\nfour\n");
        assert_eq!(l.tail(0), "");
    }
}
