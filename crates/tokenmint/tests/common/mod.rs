//! What the binary's end-to-end tests share: a free port and a server process that is killed
//! when the test ends, however it ends.

#![allow(dead_code, clippy::unwrap_used)]

use std::process::Child;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `tokenmint` process and the base URL it serves.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
