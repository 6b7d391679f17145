//! redis.conf.example must load as it is shipped.

#[test]
fn the_shipped_example_config_loads() {
    let mut cfg = pubsubd::config::Config::default();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("redis.conf.example");
    pubsubd::config::file::load_file(&mut cfg, &path).expect("example config loads");
    assert_eq!(cfg.port, 6379);
    assert_eq!(cfg.pubsub_output_limit, (32 << 20, 8 << 20, 60));
    assert!(cfg.protected_mode);
    assert_eq!(cfg.acllog_max_len, 128);
    pubsubd::server::startup::check(&cfg).expect("example config validates");
}
