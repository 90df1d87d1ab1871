//! Out of file descriptors: the broker (the real binary, under a low
//! `ulimit -n`) refuses the clients it cannot serve by closing them at once,
//! keeps serving the ones it has, and accepts again once descriptors free up.
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(10);

/// Protocol header out, Connection.Start's first bytes back: served. EOF or
/// reset: refused.
async fn served(addr: std::net::SocketAddr) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"AMQP\x00\x00\x09\x01").await.ok()?;
    let start = async {
        let mut h = [0u8; 7];
        s.read_exact(&mut h).await?;
        let size = u32::from_be_bytes([h[3], h[4], h[5], h[6]]) as usize;
        let mut rest = vec![0u8; size + 1];
        s.read_exact(&mut rest).await?;
        Ok::<_, std::io::Error>(h[0])
    };
    match tokio::time::timeout(DEADLINE, start).await {
        Ok(Ok(1)) => Some(s),
        Ok(_) => None,
        Err(_) => panic!("neither served nor refused within the deadline"),
    }
}

#[tokio::test]
async fn clients_beyond_the_descriptor_limit_are_refused_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cmd = format!(
        "ulimit -n 64 && exec {} --listen 127.0.0.1:0 --no-management --no-prometheus --data-dir {} --log info",
        env!("CARGO_BIN_EXE_ferretmq"),
        dir.path().join("data").display()
    );
    let mut broker = tokio::process::Command::new("sh")
        .args(["-c", &cmd])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("broker starts");
    let mut log = BufReader::new(broker.stderr.take().expect("stderr")).lines();
    let addr: std::net::SocketAddr = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = log.next_line().await.expect("log") {
            if let Some(a) = line.split("listening on ").nth(1) {
                return a.trim().parse().expect("address");
            }
        }
        panic!("the broker exited before listening");
    })
    .await
    .expect("listening in time");
    // Keep reading the log so the broker never blocks on a full pipe.
    let refusals = tokio::spawn(async move {
        let mut seen = false;
        while let Ok(Some(line)) = log.next_line().await {
            seen |= line.contains("out of file descriptors");
        }
        seen
    });

    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..100 {
        match served(addr).await {
            Some(s) => open.push(s),
            None => refused += 1,
        }
    }
    assert!(refused > 0, "64 descriptors cannot serve 100 clients");
    assert!(!open.is_empty() && open.len() < 64, "served {}", open.len());

    // Those served still are; once they go, others are served again.
    for s in open.iter_mut() {
        let mut b = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(20), s.read(&mut b))
                .await
                .is_err(),
            "a served client is not closed"
        );
    }
    open.clear();
    let again = tokio::time::timeout(DEADLINE, async {
        loop {
            // Descriptors come back as the broker sees the closes.
            if let Some(s) = served(addr).await {
                return s;
            }
        }
    })
    .await;
    assert!(again.is_ok(), "served again after descriptors came back");
    broker.kill().await.expect("kill");
    assert!(
        refusals.await.expect("log reader"),
        "the refusals are logged"
    );
}
