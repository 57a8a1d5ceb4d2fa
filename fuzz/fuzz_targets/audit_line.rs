//! The audit line decoder on arbitrary bytes: it must return an event or a
//! `DecodeError`, never panic, and what it accepts must be usable by every
//! accessor the store and detection call.
#![no_main]

use auditlens_fuzz::audit::{AuditEvent, Identity, format_rfc3339_micros, parse_rfc3339_micros};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Ok(event) = AuditEvent::decode(line) {
        let _ = (event.actor(), event.effective_username(), event.source_ip(), event.resource());
        let _ = (event.subresource(), event.namespace(), event.object_name(), event.api_group());
        let _ = (event.response_code(), event.decision(), event.authorization_reason());
        let _ = (event.is_denied(), event.is_allowed(), event.is_write());
        let _ = (event.effective_identity(), event.actor_identity());
        // A decoded time prints and parses back to itself (the store writes
        // it as microseconds and reports print it).
        for micros in [event.ts, event.stage_ts] {
            let text = format_rfc3339_micros(micros);
            assert_eq!(parse_rfc3339_micros(&text), Some(micros), "{text}");
        }
    } else if let Some(error) = AuditEvent::decode(line).err() {
        let _ = (error.reason_code(), error.to_string());
    }
    // The timestamp parser and identity classifier see attacker text directly.
    if let Ok(text) = std::str::from_utf8(line) {
        if let Some(micros) = parse_rfc3339_micros(text) {
            let printed = format_rfc3339_micros(micros);
            assert_eq!(parse_rfc3339_micros(&printed), Some(micros), "{text} -> {printed}");
        }
        let identity = Identity::classify(text);
        let _ = format!("{identity:?}");
    }
});
