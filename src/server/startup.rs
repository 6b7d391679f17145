//! The start-up cross-checks: what a configuration names that only a subsystem can judge. ACL
//! rules of `user` lines and the aclfile (against the command catalogue), `rename-command`
//! names (against the command table), TLS material, the backbone's settings and files, and the
//! cluster node file. `config` describes settings and knows none of these; the checks run here, where the server is assembled, before anything listens.
//!
//! A bad line is reported as Redis's fatal config report, with its file and line.

use crate::auth::rules::{RuleError, User};
use crate::auth::users::Acl;
use crate::config::{Config, ConfigError};

/// Checks a loaded configuration as Redis does at start-up; the error is what Redis prints.
pub fn check(cfg: &Config) -> Result<(), ConfigError> {
    cfg.validate()?;
    let catalogue = crate::commands::catalogue();
    for line in &cfg.lines_to_check.0 {
        match line.args[0].as_str() {
            "user" if line.args.len() > 1 => {
                let all = line.acl_pubsub_default_all;
                let mut probe = User::new(catalogue, &line.args[1], all);
                for r in &line.args[2..] {
                    if let Err(e) = probe.apply(r.as_bytes(), all) {
                        if e != RuleError::UnknownCommand {
                            return Err(line.error(format!("Error in user declaration '{r}': {e}")));
                        }
                    }
                }
            }
            "rename-command"
                if line.args.len() > 1
                    && crate::commands::lookup::find(&line.args[1].to_ascii_lowercase())
                        .is_none() =>
            {
                return Err(line.error("No such command in rename-command".to_string()));
            }
            _ => {}
        }
    }
    let fatal = |reason: String| ConfigError::Fatal { reason };
    Acl::from_config(catalogue, cfg)
        .map_err(|e| fatal(format!("Aborting Redis startup because of ACL errors: {e}")))?;
    crate::backbone::check_config(&cfg.backbone)
        .map_err(|e| fatal(format!("Failed to configure the backbone: {e}")))?;
    if cfg.tls.port != 0 {
        super::listener::tls_acceptor(&cfg.tls)
            .map_err(|e| fatal(format!("Failed to configure TLS: {e}")))?;
    }
    if cfg.cluster_enabled {
        // Reads or creates the node id now, so an unusable cluster-config-file stops start-up.
        crate::cluster::Cluster::open(cfg, cfg.port).map_err(|e| fatal(e.to_string()))?;
    }
    Ok(())
}
