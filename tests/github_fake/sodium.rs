//! Curve25519 key pairs and sealed boxes through PyNaCl (`seal_box.py`, `open_box.py`).
//!
//! The fake holds no Rust crypto: the repo's venv python (`$OPSYNC_VENV` or `<repo>/.venv`,
//! PyPI PyNaCl, installed by `scripts/setup-peers.sh`) makes the key pairs, seals values for
//! seeding, and opens what clients stored, so an independent libsodium binding judges them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// How many key pairs one `keygen` run makes.
const BATCH: usize = 8;

/// A Curve25519 key pair, both halves base64 (32 bytes each).
#[derive(Clone, Debug)]
pub struct KeyPair {
    pub public: String,
    pub private: String,
}

/// The venv's python, the helpers beside this file, and key pairs made ahead.
pub struct Sodium {
    python: PathBuf,
    dir: PathBuf,
    spare: Mutex<Vec<KeyPair>>,
}

impl Sodium {
    /// Finds the venv's python; panics with the setup command when there is none.
    pub fn locate() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = super::venv::python_with("nacl", "PyNaCl, which the GitHub fake needs");
        Self {
            python,
            dir: root.join("tests/github_fake"),
            spare: Mutex::new(Vec::new()),
        }
    }

    /// Makes a batch of key pairs unless some are left.
    pub fn warm(&self) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.is_empty() {
            spare.extend(self.keygen(BATCH));
        }
    }

    /// A fresh key pair (made in batches, so most calls spawn no python).
    pub fn key_pair(&self) -> KeyPair {
        self.warm();
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        spare.pop().expect("keygen made key pairs")
    }

    fn keygen(&self, count: usize) -> Vec<KeyPair> {
        let pairs = self.run("seal_box.py", &["keygen", &count.to_string()], None);
        let pairs = pairs.as_array().cloned().unwrap_or_default();
        let pairs: Vec<KeyPair> = pairs
            .iter()
            .filter_map(|pair| {
                Some(KeyPair {
                    public: pair["public"].as_str()?.to_owned(),
                    private: pair["private"].as_str()?.to_owned(),
                })
            })
            .collect();
        assert_eq!(pairs.len(), count, "seal_box.py keygen {count}");
        pairs
    }

    /// `plaintext` sealed for `public_key` (base64), base64: what a client PUTs.
    pub fn seal(&self, public_key: &str, plaintext: &[u8]) -> String {
        let request = json!({"public_key": public_key, "plaintext": STANDARD.encode(plaintext)});
        let answer = self.run("seal_box.py", &["seal"], Some(&request));
        answer["encrypted_value"]
            .as_str()
            .unwrap_or_else(|| panic!("seal_box.py seal printed no encrypted_value: {answer}"))
            .to_owned()
    }

    /// Opens `encrypted_value` (base64) with `private_key` (base64); why not, when it does not.
    pub fn open(&self, private_key: &str, encrypted_value: &str) -> Result<Vec<u8>, String> {
        let request = json!({"private_key": private_key, "encrypted_value": encrypted_value});
        let answer = self.run("open_box.py", &[], Some(&request));
        if let Some(plaintext) = answer["plaintext"].as_str() {
            return STANDARD
                .decode(plaintext)
                .map_err(|e| format!("open_box.py printed bad base64: {e}"));
        }
        Err(answer["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("open_box.py answered {answer}")))
    }

    /// Runs a helper with `stdin` (JSON) and returns the JSON line it printed.
    fn run(&self, script: &str, args: &[&str], stdin: Option<&Value>) -> Value {
        let mut child = Command::new(&self.python)
            .arg(self.dir.join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {} {script}: {e}", self.python.display()));
        {
            let mut input = child.stdin.take().expect("a piped stdin");
            if let Some(stdin) = stdin {
                input
                    .write_all(stdin.to_string().as_bytes())
                    .expect("write the helper's input");
            }
        }
        let output = child.wait_with_output().expect("wait for the helper");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("No module named 'nacl'"),
            "{} cannot import PyNaCl: run `bash scripts/setup-peers.sh`",
            self.python.display()
        );
        assert!(
            output.status.success(),
            "{script} {args:?} failed ({}): {stderr}",
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stdout}"))
    }
}
