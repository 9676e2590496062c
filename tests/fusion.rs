//! Training turns Burn's kernel fusion off (it computes parts of our training graphs wrongly on
//! wgpu: see `train::trainer::unfused`). Its own test binary, so that no other test has read
//! Burn's configuration first.

#[test]
fn training_turns_kernel_fusion_off() {
    if std::env::var_os("BURN_FUSION_MAX_EXPLORATIONS").is_some() {
        // The variable is the documented way to decide otherwise; then there is nothing to test.
        eprintln!("BURN_FUSION_MAX_EXPLORATIONS is set: skipped");
        return;
    }
    assert!(portraitist::train::trainer::unfused());
    let config = burn::runtime_config();
    assert_eq!(config.fusion().beam_search.max_explorations, Some(0));
    // Called again (every trainer does), it keeps the setting.
    assert!(portraitist::train::trainer::unfused());
}
