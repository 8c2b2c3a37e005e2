//! Reading the small files a client is pointed at (a client secret, a private key): a path
//! named by mistake (`/dev/zero`, a FIFO) is refused at once, never read without end or
//! waited on, and at most one byte past the limit is read.
//!
//! The server side has the same rule in `tokenmint_http::config_file`; the client SDK does not
//! depend on that crate, so it has its own few lines.

use std::io::Read as _;
use std::path::Path;

/// The UTF-8 text of the regular file at `path`, of at most `limit` bytes; `Err` says why not
/// (`what` names the kind of file in "which no {what} is").
pub(crate) fn read_small(path: &Path, limit: u64, what: &str) -> Result<String, String> {
    let regular = |meta: std::fs::Metadata| {
        if meta.is_file() { Ok(()) } else { Err("it is not a regular file".to_owned()) }
    };
    // Checked before opening: opening a FIFO waits for a writer.
    regular(std::fs::metadata(path).map_err(|e| e.to_string())?)?;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // And again on what was opened, in case the path changed in between.
    regular(file.metadata().map_err(|e| e.to_string())?)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("it is larger than {} KiB, which no {what} is", limit / 1024));
    }
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO is refused without waiting for a writer; a device without reading it.
    #[test]
    fn devices_and_fifos_are_refused_and_a_file_is_read_up_to_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        for path in [Path::new("/dev/zero"), fifo.as_path()] {
            assert_eq!(read_small(path, 4096, "secret").unwrap_err(), "it is not a regular file");
        }
        let file = dir.path().join("secret");
        std::fs::write(&file, vec![b'a'; 4097]).unwrap();
        let e = read_small(&file, 4096, "secret").unwrap_err();
        assert_eq!(e, "it is larger than 4 KiB, which no secret is");
        std::fs::write(&file, vec![b'a'; 4096]).unwrap();
        assert_eq!(read_small(&file, 4096, "secret").unwrap().len(), 4096);
    }
}
