//! Per-identity sliding windows for the rules that count (403 bursts, secret
//! enumeration).
//!
//! Memory is bounded three ways: entries older than the window are dropped on
//! every observation, each identity keeps at most `per_identity_cap` entries
//! (the newest), and identities idle for a whole window are swept out every
//! few thousand observations. A window that fired is cleared and the identity
//! is quiet until `cooldown_until`, so one burst is one anomaly, and a burst
//! that keeps going becomes one anomaly per window.

use std::collections::{HashMap, VecDeque};

/// One identity's recent entries of type `T`, newest last.
#[derive(Debug)]
pub struct IdentityWindow<T> {
    pub entries: VecDeque<(i64, T)>,
    pub cooldown_until: i64,
}

impl<T> Default for IdentityWindow<T> {
    fn default() -> Self {
        IdentityWindow {
            entries: VecDeque::new(),
            cooldown_until: i64::MIN,
        }
    }
}

/// Sliding windows keyed by identity.
#[derive(Debug)]
pub struct SlidingWindows<T> {
    windows: HashMap<String, IdentityWindow<T>>,
    window_micros: i64,
    per_identity_cap: usize,
    observations_since_sweep: usize,
}

impl<T> SlidingWindows<T> {
    pub fn new(window_micros: i64, per_identity_cap: usize) -> SlidingWindows<T> {
        SlidingWindows {
            windows: HashMap::new(),
            window_micros,
            per_identity_cap: per_identity_cap.max(1),
            observations_since_sweep: 0,
        }
    }

    pub fn window_micros(&self) -> i64 {
        self.window_micros
    }

    /// Adds an entry at `ts` and returns the identity's window, pruned to the
    /// last `window_micros`, or `None` while the identity is cooling down.
    pub fn push(&mut self, identity: &str, ts: i64, entry: T) -> Option<&mut IdentityWindow<T>> {
        self.observations_since_sweep += 1;
        if self.observations_since_sweep >= 4096 {
            self.sweep(ts);
        }
        if !self.windows.contains_key(identity) {
            self.windows
                .insert(identity.to_string(), IdentityWindow::default());
        }
        let window = self.windows.get_mut(identity)?;
        if ts < window.cooldown_until {
            return None;
        }
        window.entries.push_back((ts, entry));
        let horizon = ts - self.window_micros;
        while window
            .entries
            .front()
            .is_some_and(|(entry_ts, _)| *entry_ts < horizon)
        {
            window.entries.pop_front();
        }
        while window.entries.len() > self.per_identity_cap {
            window.entries.pop_front();
        }
        Some(window)
    }

    /// Drops identities whose newest entry left the window and whose cooldown ended.
    fn sweep(&mut self, now: i64) {
        self.observations_since_sweep = 0;
        let horizon = now - self.window_micros;
        self.windows.retain(|_, window| {
            window.cooldown_until > now
                || window.entries.back().is_some_and(|(ts, _)| *ts >= horizon)
        });
    }

    pub fn tracked_identities(&self) -> usize {
        self.windows.len()
    }
}

/// Marks a window as fired: clears it and keeps it quiet for one window.
pub fn fire<T>(window: &mut IdentityWindow<T>, now: i64, window_micros: i64) {
    window.entries.clear();
    window.cooldown_until = now + window_micros;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_caps_and_cools_down() {
        let mut windows: SlidingWindows<u32> = SlidingWindows::new(100, 3);
        for ts in 0..5 {
            let window = windows.push("a", ts, 1).expect("not cooling down");
            assert!(window.entries.len() <= 3);
        }
        let window = windows.push("a", 150, 1).expect("not cooling down");
        assert_eq!(window.entries.len(), 1, "old entries pruned");
        fire(window, 150, 100);
        assert!(windows.push("a", 200, 1).is_none());
        assert!(windows.push("a", 251, 1).is_some());
    }

    #[test]
    fn idle_identities_are_swept() {
        let mut windows: SlidingWindows<()> = SlidingWindows::new(10, 4);
        for index in 0..5000_i64 {
            windows.push(&format!("identity-{index}"), index * 100, ());
        }
        assert!(windows.tracked_identities() < 4096);
    }
}
