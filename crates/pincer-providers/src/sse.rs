//! A bounded server-sent-events decoder (the WHATWG event-stream format): bytes in, events out.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The joined `data:` lines.
    pub data: String,
}

/// Incremental decoder. Holds at most `max_event_bytes` of an unfinished event.
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    max_event_bytes: usize,
}

/// The stream broke a limit or was not text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseError(pub String);

impl SseDecoder {
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            event: None,
            data: String::new(),
            has_data: false,
            max_event_bytes,
        }
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.buf.extend_from_slice(chunk);
        let buf = std::mem::take(&mut self.buf);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let mut line = &buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let Ok(line) = std::str::from_utf8(line) else {
                return Err(SseError("event stream is not UTF-8".into()));
            };
            if let Some(ev) = self.line(line) {
                out.push(ev);
            }
            start = end + 1;
        }
        self.buf = buf;
        self.buf.drain(..start);
        if self.buf.len() + self.data.len() > self.max_event_bytes {
            return Err(SseError(format!(
                "event larger than {} bytes",
                self.max_event_bytes
            )));
        }
        Ok(out)
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if !self.has_data {
                self.event = None;
                return None;
            }
            let mut data = std::mem::take(&mut self.data);
            if data.ends_with('\n') {
                data.pop();
            }
            self.has_data = false;
            return Some(SseEvent {
                event: self.event.take(),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        None
    }

    /// Whether bytes of an unfinished event are pending (used to tell a clean end from a cut).
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            if let Ok(line) = std::str::from_utf8(&rest) {
                let line = line.trim_end_matches('\r').to_owned();
                let _ = self.line(&line);
            }
        }
        self.line("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_across_chunk_boundaries() {
        let mut d = SseDecoder::new(1024);
        let input = b"event: a\r\ndata: one\r\n\r\n: comment\ndata: two\ndata: lines\n\ndata:x";
        let mut events = Vec::new();
        for b in input.chunks(3) {
            events.extend(d.push(b).unwrap());
        }
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0],
            SseEvent {
                event: Some("a".into()),
                data: "one".into()
            }
        );
        assert_eq!(events[1].data, "two\nlines");
        assert_eq!(d.finish().map(|e| e.data), Some("x".into()));
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut d = SseDecoder::new(16);
        assert!(d.push(&[b'a'; 64]).is_err());
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut d = SseDecoder::new(1024);
        assert!(d.push(b"data: \xff\xfe\n\n").is_err());
    }
}
