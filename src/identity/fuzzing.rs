//! Not an API: thin wrappers that let the fuzz targets (`fuzz/`) and their regression test
//! (`tests/fuzz_regressions.rs`) reach the session data readers, which are private. Each
//! returns the reader's result, its error as text.

use serde_json::Value;

use super::php::session_data::{SerializeHandler, decode_session};

/// PHP `unserialize` of exactly one value (Laravel's sessions, the `php_serialize` handler).
pub fn php_unserialize(data: &[u8]) -> Result<Value, String> {
    super::php::unserialize(data).map_err(|e| e.to_string())
}

/// PHP native session data, with the `php` handler (`name|value…`) or, when
/// `php_serialize`, the `php_serialize` one.
pub fn php_session_data(data: &[u8], php_serialize: bool) -> Result<Value, String> {
    let handler = match php_serialize {
        true => SerializeHandler::PhpSerialize,
        false => SerializeHandler::Php,
    };
    decode_session(data, handler).map_err(|e| e.to_string())
}

/// Ruby `Marshal.load` of plain data (Rails cookie sessions), as JSON.
pub fn ruby_marshal_load(data: &[u8]) -> Result<Value, String> {
    super::rails::marshal::load(data).map_err(|e| e.to_string())
}
