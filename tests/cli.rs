//! The `edgemq` binary: config errors exit with status 2 and name file, line and key; the
//! default config round-trips; a real broker on -p PORT serves and stops on SIGTERM; the binary
//! survives a panicking hook (--check-unwind).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgemq"))
}

fn temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("edgemq-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn check(text: &str) -> (i32, String) {
    let p = temp(&format!("c{}.conf", text.len()), text);
    let out = bin().arg("--check-config").arg("-c").arg(&p).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_unknown_key_exits_2_naming_file_line_and_key() {
    let (code, err) = check("[limits]\nmax_clientz = 3\n");
    assert_eq!(code, 2);
    assert!(err.contains(".conf:2:1: key `limits.max_clientz`: unknown key"), "{err}");
}

#[test]
fn a_wrong_type_exits_2_with_what_was_expected() {
    let (code, err) = check("[limits]\nmax_clients = \"lots\"\n");
    assert_eq!(code, 2);
    assert!(err.contains(":2:15: key `limits.max_clients`: expected a positive integer"), "{err}");
}

#[test]
fn an_out_of_range_value_exits_2() {
    let (code, err) = check("[mqtt]\nmax_qos = 3\n");
    assert_eq!(code, 2);
    assert!(err.contains("key `mqtt.max_qos`"), "{err}");
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let out = bin().args(["-c", "/nonexistent/edgemq.conf"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/edgemq.conf"));
}

#[test]
fn an_unreadable_certificate_exits_2_naming_the_listener_key() {
    let (code, err) = check("[[listener]]\ntype = \"tls\"\nbind = \"127.0.0.1:8883\"\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n");
    assert_eq!(code, 2);
    assert!(err.contains("listener[0].cert"), "{err}");
}

#[test]
fn the_printed_default_config_passes_check_config() {
    let out = bin().arg("--print-default-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("max_clients"));
    let (code, err) = check(&text);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_unknown_flag_exits_2() {
    let out = bin().arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_unwind_survives_a_panicking_hook_and_prints_unwind_ok() {
    let out = bin().arg("--check-unwind").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A std that aborts on panic kills the process with SIGABRT (no exit code).
    assert!(
        out.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "unwind: ok");
}

/// A port free right now and not handed to another test of this process: two tests running in
/// parallel could otherwise be given the same just-released port, and one would talk to the
/// other's broker.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

#[test]
fn the_broker_serves_on_the_given_port_and_stops_on_sigterm_with_disconnect_0x8b() {
    let port = free_port();
    let mut child = bin().args(["-p", &port.to_string()]).stderr(Stdio::null()).stdout(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                let _ = child.kill();
                panic!("broker did not listen: {e}");
            }
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // CONNECT 5.0, client id "c"
    s.write_all(&[0x10, 0x0e, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 0, 0, 0, 1, b'c']).unwrap();
    let mut ack = [0u8; 2];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack[0], 0x20);
    let mut rest = vec![0u8; ack[1] as usize];
    s.read_exact(&mut rest).unwrap();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut disc = [0u8; 3];
    s.read_exact(&mut disc).unwrap();
    assert_eq!(disc, [0xe0, 0x01, 0x8b], "DISCONNECT server shutting down");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "{st:?}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("broker did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CONNECT 3.1.1 with user name and password; returns the CONNACK return code.
fn connect_as(port: u16, user: &str, password: &str) -> u8 {
    use edgemq::packets::{Connect, Packet, Properties, Version};
    let c = Connect {
        version: Version::V3_1_1,
        clean_start: true,
        keep_alive: 0,
        client_id: user,
        will: None,
        username: Some(user),
        password: Some(password.as_bytes()),
        properties: Properties::default(),
    };
    let mut bytes = Vec::new();
    Packet::Connect(c).encode(Version::V3_1_1, &mut bytes).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&bytes).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(&ack[..2], &[0x20, 0x02]);
    ack[3]
}

fn wait_for_port(port: u16, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("broker did not listen");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_the_ledger_so_a_new_user_connects_without_a_restart() {
    let port = free_port();
    let ledger = temp("ledger.toml", "[[auth]]\nusername = \"alice\"\npassword = \"a-pw\"\nallow = true\n");
    let conf = temp(
        "hup.conf",
        &format!(
            "[auth]\nallow_anonymous = false\nledger = \"{}\"\n[[listener]]\ntype = \"tcp\"\nbind = \"127.0.0.1:{port}\"\n",
            ledger.display()
        ),
    );
    let mut child = bin().arg("-c").arg(&conf).stderr(Stdio::null()).stdout(Stdio::null()).spawn().unwrap();
    wait_for_port(port, &mut child);
    assert_eq!(connect_as(port, "alice", "a-pw"), 0);
    assert_eq!(connect_as(port, "bob", "b-pw"), 4, "bad user name or password before the reload");
    std::fs::write(&ledger, "[[auth]]\nusername = \"alice\"\npassword = \"a-pw\"\nallow = true\n[[auth]]\nusername = \"bob\"\npassword = \"b-pw\"\nallow = true\n").unwrap();
    Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut code = 4;
    while code != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        code = connect_as(port, "bob", "b-pw");
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    assert_eq!(code, 0, "bob admitted after SIGHUP");
}

#[test]
fn passwd_prints_a_hash_the_ledger_accepts() {
    let out = bin().args(["passwd", "-i", "1000", "s3cret"]).output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("pbkdf2-sha256$1000$"), "{hash}");
    assert!(edgemq::hooks::ledger::verify_password(hash, "s3cret"));
    assert!(!edgemq::hooks::ledger::verify_password(hash, "wrong"));
}

#[test]
fn a_broken_ledger_file_exits_2_naming_it() {
    let ledger = temp("bad-ledger.toml", "[[auth]]\nusernam = \"x\"\n");
    let conf = temp("badledger.conf", &format!("[auth]\nledger = \"{}\"\n", ledger.display()));
    let out = bin().arg("-c").arg(&conf).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad-ledger.toml") && err.contains("usernam"), "{err}");
}
