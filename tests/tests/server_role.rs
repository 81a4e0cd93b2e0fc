//! `ledger serve` works as the database role `ledger_server`, which owns nothing and cannot
//! change the log (migration `…_server_role.sql`), in the embedded default as with a server
//! of the operator's.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ledger_store::testing::TestDatabase;
use ledger_tests::{fresh_directory, ledger_binary};
use sqlx::Connection;

fn serve(directory: &std::path::Path, database_url: Option<&str>) -> Child {
    let mut command = Command::new(ledger_binary());
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(directory)
        .env_remove("DATABASE_URL")
        .env_remove("LEDGER_SERVER_DATABASE_URL")
        .env_remove("LEDGER_STRIPE_WEBHOOK_SECRETS")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    command.spawn().expect("ledger serve starts")
}

fn interrupt(server: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    let _ = server.wait();
}

/// The embedded cluster: every connection of the running server is logged in as
/// `ledger_server`, none as the cluster's superuser that migrated it.
#[tokio::test]
async fn the_embedded_server_logs_in_as_its_own_role() {
    let directory = fresh_directory("server-role");
    let mut server = serve(&directory, None);
    let stdout = server.stdout.take().expect("piped standard output");
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let home = lines
        .by_ref()
        .find_map(|line| line.strip_prefix("ledger data: ").map(str::to_owned))
        .expect("ledger serve prints where its data are");
    assert!(
        lines.any(|line| line.starts_with("ledger serving on")),
        "ledger serve did not serve"
    );

    // postmaster.pid's fourth and fifth lines: the port and the socket's directory.
    let pid_file = std::fs::read_to_string(format!("{home}/data/postmaster.pid")).unwrap();
    let pid_lines: Vec<&str> = pid_file.lines().collect();
    let url = format!(
        "postgres://ledger@localhost/postgres?host={}&port={}",
        pid_lines[4].trim(),
        pid_lines[3].trim()
    );
    let mut observer = sqlx::PgConnection::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let users = loop {
        let users = sqlx::query_scalar!(
            r#"SELECT DISTINCT usename::text AS "user!" FROM pg_stat_activity
               WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
               ORDER BY 1"#
        )
        .fetch_all(&mut observer)
        .await
        .unwrap();
        if !users.is_empty() || Instant::now() > deadline {
            break users;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    observer.close().await.unwrap();
    interrupt(&mut server);
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&directory);
    assert_eq!(users, ["ledger_server"]);
}

/// With `DATABASE_URL` the server switches to the role on every connection, and checks what
/// the role may do before it serves: a role that lost its grant on the log is refused, with
/// a message that names what is missing, instead of serving as the owner.
#[tokio::test]
async fn a_server_role_without_its_grants_is_refused_before_serving() {
    let database = TestDatabase::new().await;
    sqlx::query!("REVOKE INSERT ON events FROM ledger_server")
        .execute(database.pool())
        .await
        .unwrap();
    let directory = fresh_directory("server-role-refused");
    let mut server = serve(&directory, Some(database.url()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            interrupt(&mut server);
            panic!("ledger serve served as a role that may not append events");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = server.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&directory);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("ledger_server may not read and append events"),
        "{stderr}"
    );
}
