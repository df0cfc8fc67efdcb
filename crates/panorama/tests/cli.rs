//! The command line: help, configuration layering, admin verbs and their errors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_panorama");

fn run(args: &[&str], envs: &[(&str, &str)], cwd: &std::path::Path) -> (bool, String, String) {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env_remove("PANORAMA_LISTEN")
        .env_remove("PANORAMA_DATA_DIR");
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn help_explains_every_verb() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = run(&["--help"], &[], dir.path());
    assert!(ok);
    for verb in ["serve", "source", "user", "check", "config"] {
        assert!(out.contains(verb), "--help does not mention {verb}");
    }
    let (ok, out, _) = run(&["serve", "--help"], &[], dir.path());
    assert!(ok && out.contains("--data-dir") && out.contains("--listen"));
}

#[test]
fn configuration_layers_defaults_file_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = run(&["config"], &[], dir.path());
    assert!(ok);
    assert!(out.contains("listen = \"127.0.0.1:8080\""), "{out}");
    std::fs::write(
        dir.path().join("panorama.toml"),
        "listen = \"127.0.0.1:9000\"\n[api]\nmax_items = 50\n",
    )
    .unwrap();
    let (_, out, _) = run(&["config"], &[], dir.path());
    assert!(
        out.contains("listen = \"127.0.0.1:9000\"") && out.contains("max_items = 50"),
        "{out}"
    );
    let env = [
        ("PANORAMA_LISTEN", "127.0.0.1:9001"),
        ("PANORAMA_API__MAX_ITEMS", "60"),
    ];
    let (_, out, _) = run(&["config"], &env, dir.path());
    assert!(
        out.contains("listen = \"127.0.0.1:9001\"") && out.contains("max_items = 60"),
        "{out}"
    );
    let (ok, out, err) = run(
        &["config"],
        &[("PANORAMA_BIN", "/x"), ("PANORAMA_WEB_SKIP", "1")],
        dir.path(),
    );
    assert!(
        ok && out.contains("listen = \"127.0.0.1:9000\""),
        "other tools' variables are not configuration: {err}"
    );
    let (_, out, _) = run(&["config", "--listen", "127.0.0.1:9002"], &env, dir.path());
    assert!(
        out.contains("listen = \"127.0.0.1:9002\"") && out.contains("max_items = 60"),
        "{out}"
    );
    // Mistakes are named.
    std::fs::write(dir.path().join("panorama.toml"), "listne = \"x\"\n").unwrap();
    let (ok, _, err) = run(&["config"], &[], dir.path());
    assert!(!ok && err.contains("listne"), "{err}");
    let (ok, _, err) = run(&["config", "--config", "missing.toml"], &[], dir.path());
    assert!(!ok && err.contains("missing.toml"), "{err}");
}

#[test]
fn admin_verbs_create_sources_and_users_and_explain_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, token, err) = run(
        &[
            "source",
            "add",
            "--id",
            "aq",
            "--name",
            "Quan trắc không khí",
            "--data-dir",
            d,
        ],
        &[],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(
        token.trim().starts_with("pns_"),
        "the token is printed on stdout: {token}"
    );
    let (ok, _, err) = run(
        &[
            "source",
            "add",
            "--id",
            "aq",
            "--name",
            "again",
            "--data-dir",
            d,
        ],
        &[],
        dir.path(),
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run(
        &[
            "source",
            "add",
            "--id",
            "bad id",
            "--name",
            "x",
            "--data-dir",
            d,
        ],
        &[],
        dir.path(),
    );
    assert!(!ok && err.contains("id"), "{err}");
    let (ok, out, _) = run(&["source", "list", "--data-dir", d], &[], dir.path());
    assert!(
        ok && out.contains("aq") && out.contains("Quan trắc không khí"),
        "{out}"
    );

    let pw = [("PANORAMA_PASSWORD", "correct horse battery")];
    let (ok, _, err) = run(
        &[
            "user",
            "add",
            "--username",
            "lanhdao",
            "--role",
            "leader",
            "--data-dir",
            d,
        ],
        &pw,
        dir.path(),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &["user", "add", "--username", "x", "--data-dir", d],
        &[("PANORAMA_PASSWORD", "short")],
        dir.path(),
    );
    assert!(!ok && err.contains("password"), "{err}");
    let (ok, _, err) = run(
        &[
            "user",
            "add",
            "--username",
            "y",
            "--role",
            "king",
            "--data-dir",
            d,
        ],
        &pw,
        dir.path(),
    );
    assert!(!ok && err.contains("role"), "{err}");
    let (ok, out, _) = run(&["user", "list", "--data-dir", d], &[], dir.path());
    assert!(ok && out.contains("lanhdao\tleader"), "{out}");
    let (ok, out, _) = run(&["check", "--data-dir", d], &[], dir.path());
    assert!(ok && out.contains("\"backend\": \"sqlite\""), "{out}");
}
