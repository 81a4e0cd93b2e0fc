//! Long-running commands a test starts (`ledger serve`, `ledger sandbox`): started once they
//! print the line that says they are ready, and stopped with Ctrl-C, as a user would, when
//! dropped — also when an assertion fails first, so no child outlives a failed test holding
//! the test runner's pipes open.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

/// A running child, stopped when dropped.
pub struct Running {
    child: Child,
    /// Kept open until the child exits: it may print more, and a closed pipe would fail it.
    _output: Lines<BufReader<ChildStdout>>,
}

impl Running {
    /// Starts `command` and waits for a line of its standard output that starts with `ready`.
    pub fn start(mut command: Command, ready: &str) -> Running {
        let mut child = match command.stdout(Stdio::piped()).spawn() {
            Ok(child) => child,
            Err(error) => panic!("{command:?} does not start: {error}"),
        };
        let Some(stdout) = child.stdout.take() else {
            panic!("{command:?} has no standard output");
        };
        let mut lines = BufReader::new(stdout).lines();
        let started = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.starts_with(ready));
        let running = Running {
            child,
            _output: lines,
        };
        assert!(started, "no `{ready}` line");
        running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
