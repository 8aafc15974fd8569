//! The PHP `unserialize` reader (Laravel's and native PHP sessions, both session handlers)
//! and the Ruby Marshal reader (Rails' `:marshal`/`:hybrid` cookies), on arbitrary bytes.
//! Byte 0 picks the reader. Must never panic; what they return must be serializable JSON.
#![no_main]

use intercom_secure_proxy::identity::fuzzing::{
    php_session_data, php_unserialize, ruby_marshal_load,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let [which, data @ ..] = input else {
        return;
    };
    let result = match which % 4 {
        0 => php_unserialize(data),
        1 => php_session_data(data, false),
        2 => php_session_data(data, true),
        _ => ruby_marshal_load(data),
    };
    if let Ok(value) = result {
        serde_json::to_vec(&value).expect("a JSON value serializes");
    }
});
