//! The HTTP server's request reading on arbitrary bytes: the head parser (request line, header
//! fields, framing) and then the body decoder (`Content-Length` or chunked), over and over for
//! pipelined requests, until the input ends or is refused. It must never panic, whatever the
//! input; it asserts the limits on header count and body size.
//!
//! The first byte is not part of the request: bit 0 picks the server's default limits or tiny
//! ones (a 64-byte request line, a 256-byte head, 4 fields, a 64-byte body), and the other bits
//! how many bytes each read returns (1 to 128), as from a socket that delivers in pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    greennet::http::__fuzz::request(data);
});
