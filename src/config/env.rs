//! The password from the environment, as charts and Compose files pass it: `REDIS_PASSWORD`
//! (the variable the most used Redis charts set), or `REDIS_PASSWORD_FILE` naming a file that
//! holds it (Docker and Kubernetes secrets mounted under `/run/secrets/`).
//!
//! Precedence: it is the default user's password *before* redis.conf and the flags, so a
//! `requirepass` in the file or on the command line wins (and start-up warns that the
//! environment's password is not the one in force). Setting both variables is a fatal error,
//! as in the official Postgres and MySQL images, rather than a silent choice.
//!
//! The secret never appears in an error or a log line: errors name the variable or the file,
//! never the value. Reading it here, in pubsubd, keeps it off every command line (`ps`), and
//! `--health-check` reads the same variables to authenticate its PING.

use std::ffi::OsString;

use super::{ConfigError, Secret};

/// The password itself.
pub const PASSWORD_ENV: &str = "REDIS_PASSWORD";
/// A file holding the password (one trailing newline, as `echo` writes, is not part of it).
pub const PASSWORD_FILE_ENV: &str = "REDIS_PASSWORD_FILE";

/// The password the environment gives, if any. `lookup` reads a variable (`std::env::var_os`
/// outside tests). An empty `REDIS_PASSWORD` is no password, as an unset one.
pub fn password(
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Result<Option<Secret<String>>, ConfigError> {
    let fatal = |reason: String| ConfigError::Fatal { reason };
    let direct = lookup(PASSWORD_ENV).filter(|v| !v.is_empty());
    let file = lookup(PASSWORD_FILE_ENV).filter(|v| !v.is_empty());
    let text = match (direct, file) {
        (Some(_), Some(_)) => {
            return Err(fatal(format!(
                "Both {PASSWORD_ENV} and {PASSWORD_FILE_ENV} are set: set one of them"
            )))
        }
        (Some(v), None) => v
            .into_string()
            .map_err(|_| fatal(format!("{PASSWORD_ENV} is not valid UTF-8")))?,
        (None, Some(path)) => {
            let shown = path.to_string_lossy().into_owned();
            let bytes = std::fs::read(&path)
                .map_err(|e| fatal(format!("Cannot read {PASSWORD_FILE_ENV} '{shown}': {e}")))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| fatal(format!("{PASSWORD_FILE_ENV} '{shown}' is not valid UTF-8")))?;
            let text = strip_final_newline(&text);
            if text.is_empty() {
                return Err(fatal(format!("{PASSWORD_FILE_ENV} '{shown}' is empty")));
            }
            text.to_string()
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(Secret(text)))
}

/// `echo secret > file` and `kubectl create secret --from-file` keep a final newline that is not
/// part of the password.
fn strip_final_newline(s: &str) -> &str {
    let s = s.strip_suffix('\n').unwrap_or(s);
    s.strip_suffix('\r').unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| {
            vars.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.into())
        }
    }

    fn reason(e: ConfigError) -> String {
        e.to_string()
    }

    #[test]
    fn unset_or_empty_is_no_password() {
        assert_eq!(password(env(&[])).unwrap(), None);
        assert_eq!(password(env(&[(PASSWORD_ENV, "")])).unwrap(), None);
    }

    #[test]
    fn the_variable_is_the_password_as_it_is() {
        let got = password(env(&[(PASSWORD_ENV, " s3cret \n")])).unwrap();
        assert_eq!(got, Some(Secret(" s3cret \n".to_string())));
    }

    #[test]
    fn the_file_loses_one_final_newline() {
        let dir = std::env::temp_dir().join(format!("pubsubd-envpw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (content, want) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret", "s3cret"),
            ("two words\n\n", "two words\n"),
        ] {
            let f = dir.join("pw");
            std::fs::write(&f, content).unwrap();
            let got = password(env(&[(PASSWORD_FILE_ENV, f.to_str().unwrap())])).unwrap();
            assert_eq!(got, Some(Secret(want.to_string())), "{content:?}");
        }
        std::fs::write(dir.join("empty"), "\n").unwrap();
        let e = password(env(&[(
            PASSWORD_FILE_ENV,
            dir.join("empty").to_str().unwrap(),
        )]))
        .unwrap_err();
        assert!(reason(e).ends_with("' is empty"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_never_show_the_secret() {
        let e = password(env(&[(PASSWORD_ENV, "s3cret"), (PASSWORD_FILE_ENV, "/x")])).unwrap_err();
        assert_eq!(
            reason(e),
            "Both REDIS_PASSWORD and REDIS_PASSWORD_FILE are set: set one of them"
        );
        let e = password(env(&[(PASSWORD_FILE_ENV, "/nonexistent/pw")])).unwrap_err();
        let text = reason(e);
        assert!(
            text.starts_with("Cannot read REDIS_PASSWORD_FILE '/nonexistent/pw': "),
            "{text}"
        );
    }
}
