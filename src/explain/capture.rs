//! The proxy's own log events, kept while `explain` runs: they say why in the words the
//! logs use (a JWT's refusal reason, the store's error, the misconfiguration warning with
//! the key to fix), so `explain` reports what the real code said rather than guessing.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::{EnvFilter, Registry};

/// One event: its level, module, message and fields (the logs carry no cookie, token or
/// secret, so none is here either).
#[derive(Debug, Clone)]
pub(super) struct Logged {
    pub(super) level: Level,
    pub(super) target: String,
    pub(super) message: String,
    pub(super) fields: Vec<(String, String)>,
}

impl Logged {
    /// A field's value, if the event has it.
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it came from this module of the crate (`identity`, `inject`, `proxy`).
    pub(super) fn from(&self, module: &str) -> bool {
        self.target
            .strip_prefix("intercom_secure_proxy::")
            .is_some_and(|rest| rest.starts_with(module))
    }

    /// `message (k=v, …)`, one line.
    pub(super) fn line(&self) -> String {
        if self.fields.is_empty() {
            return self.message.clone();
        }
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        format!("{} ({})", self.message, fields.join(", "))
    }
}

/// The events seen so far, taken phase by phase.
#[derive(Clone, Default)]
pub(super) struct Captured(Arc<Mutex<Vec<Logged>>>);

impl Captured {
    fn events(&self) -> MutexGuard<'_, Vec<Logged>> {
        // A panic elsewhere while holding it leaves plain data behind: still readable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The events since the last take.
    pub(super) fn take(&self) -> Vec<Logged> {
        std::mem::take(&mut *self.events())
    }

    /// A dispatcher keeping the crate's events down to DEBUG, and writing to stderr as well
    /// only when `RUST_LOG` asks (stdout is the explanation).
    pub(super) fn dispatch(&self) -> Dispatch {
        let keep = Targets::new().with_target("intercom_secure_proxy", Level::DEBUG);
        let stderr = std::env::var_os("RUST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(EnvFilter::from_default_env())
        });
        let subscriber = Registry::default()
            .with(CaptureLayer(self.clone()).with_filter(keep))
            .with(stderr);
        Dispatch::new(subscriber)
    }
}

struct CaptureLayer(Captured);

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0.events().push(Logged {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            message: fields.message,
            fields: fields.others,
        });
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.keep(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.keep(field, format!("{value:?}"));
    }
}

impl Fields {
    fn keep(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            name => self.others.push((name.to_string(), value)),
        }
    }
}
