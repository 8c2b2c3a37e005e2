//! A real HAProxy (Debian's package; `.ci/setup-haproxy.sh` installs it) on a configuration the
//! test writes, killed when dropped. Tests that need it skip with a message when it is not
//! installed, unless `TOKENMINT_REQUIRE_SERVICES=1` requires it.

#![allow(clippy::print_stderr)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokenmint_store::testing::services_required;

/// HAProxy, killed when dropped.
pub struct Haproxy {
    child: Child,
    /// Where its first frontend listens.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `haproxy` can be run; when it cannot, says the test is skipped, or fails when
/// `TOKENMINT_REQUIRE_SERVICES=1` requires it.
pub fn installed() -> bool {
    let found = Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !services_required(),
            "haproxy is required (TOKENMINT_REQUIRE_SERVICES=1) but not installed: run .ci/setup-haproxy.sh"
        );
        eprintln!("skipped: haproxy is not installed (run .ci/setup-haproxy.sh)");
    }
    found
}

/// A port nothing listens on at the moment (for configurations that must name their ports).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Haproxy {
    /// Starts HAProxy on `config`, whose first frontend binds 127.0.0.1:`port`, and waits until
    /// it listens there.
    pub async fn start(config: &str, port: u16) -> Haproxy {
        Self::try_start(config, &[port]).await.unwrap_or_else(|said| panic!("{said}"))
    }

    /// Starts HAProxy on `config` and waits until it listens on every one of `ports` and is
    /// still running then; `Err` with what it said when it exited instead (a port another
    /// process took after it was chosen: the caller may choose others and try again).
    pub async fn try_start(config: &str, ports: &[u16]) -> Result<Haproxy, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        // Its messages (a server going down and up again, as some tests make them) are read
        // only when it fails to start.
        let log = dir.path().join("haproxy.log");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("haproxy starts");
        let addr: SocketAddr = format!("127.0.0.1:{}", ports[0]).parse().unwrap();
        let mut proxy = Haproxy { child, addr, _dir: dir };
        // It starts in milliseconds; the deadline bounds a broken start.
        let deadline = Instant::now() + Duration::from_secs(10);
        let exited = |proxy: &mut Haproxy| -> Option<String> {
            let status = proxy.child.try_wait().unwrap()?;
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            Some(format!("haproxy exited ({status}) instead of listening:\n{said}\n{config}"))
        };
        for port in ports {
            let at: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            while tokio::net::TcpStream::connect(at).await.is_err() {
                if let Some(said) = exited(&mut proxy) {
                    return Err(said);
                }
                assert!(Instant::now() < deadline, "haproxy did not start listening on {at}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Listening everywhere and still running: what answered is HAProxy, not another
        // process that held one of the ports while HAProxy gave up.
        match exited(&mut proxy) {
            Some(said) => Err(said),
            None => Ok(proxy),
        }
    }
}
