#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Seeded mutation fuzzing (issue 23, part 7) of the server-sent-events decoder every streamed
//! model answer passes through: random chunkings of mutated streams decode or fail with an
//! error, never a panic, and a well-formed stream decodes the same however it is chunked.

use pincer_providers::sse::SseDecoder;

#[test]
fn mutated_and_rechunked_streams_never_panic_the_decoder() {
    let iters: usize = std::env::var("PINCER_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let stream = "event: message\ndata: {\"choices\":[{\"delta\":{\"content\":\"hel\"}}]}\n\n\
                  : comment\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n\
                  id: 7\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n";
    let whole: Vec<_> = SseDecoder::new(1 << 20).push(stream.as_bytes()).unwrap();
    let mut rng = fastrand::Rng::with_seed(0x055e_dec0);
    for i in 0..iters {
        let mut bytes = stream.as_bytes().to_vec();
        let mutated = i % 2 == 1;
        if mutated {
            for _ in 0..rng.usize(1..5) {
                let at = rng.usize(..bytes.len());
                match rng.u8(..3) {
                    0 => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, rng.u8(..)),
                    _ => bytes[at] = [b'\n', b'\r', b':', 0xff, 0xc3][rng.usize(..5)],
                }
            }
        }
        let mut d = SseDecoder::new(if rng.bool() { 64 } else { 1 << 20 });
        let mut events = Vec::new();
        let mut failed = false;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = rng.usize(1..=rest.len().min(17));
            match d.push(&rest[..n]) {
                Ok(mut e) => events.append(&mut e),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
            rest = &rest[n..];
        }
        if !mutated && !failed {
            assert_eq!(events, whole, "chunking changed the events");
        }
    }
}
