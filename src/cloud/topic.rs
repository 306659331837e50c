//! Topic levels: which store a message came from and what it is (docs/feeds.md), and the
//! filters and command topics built from the stores' prefix.

/// Which store: tenant and store id, taken from the topic (the broker's ACL lets a store
/// publish under its own prefix only, so the topic is the authenticated identity).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreKey {
    /// Tenant.
    pub tenant: String,
    /// Store.
    pub store: String,
}

/// What a message on a store's prefix is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// `{register}/{event_type}`: one `posedge.event/1`.
    Event,
    /// `{register}/inventory`: one `posedge.inventory/1`.
    Inventory,
    /// `_agent/summary/{business_day}`: a `posedge.summary/1` revision.
    Summary,
    /// `_agent/status`: the retained status with the lanes' high-water marks.
    Status,
    /// `_agent/reply/{id}`: the answer to a command.
    Reply,
    /// Anything else (`_agent/audit`, commands): taken and acknowledged, not stored.
    Other,
}

/// The stores' topic prefix, e.g. `posedge/v1/{tenant}/{store}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    levels: Vec<String>,
}

/// Why a prefix cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LayoutError(String);

impl Default for Layout {
    fn default() -> Self {
        Layout {
            levels: ["posedge", "v1", "{tenant}", "{store}"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl Layout {
    /// Checks a prefix: `{tenant}` and `{store}` each exactly once as a whole level,
    /// no wildcards.
    pub fn parse(prefix: &str) -> Result<Layout, LayoutError> {
        let levels: Vec<String> = prefix.split('/').map(String::from).collect();
        let count = |p: &str| levels.iter().filter(|l| *l == p).count();
        if count("{tenant}") != 1 || count("{store}") != 1 {
            return Err(LayoutError(format!(
                "{prefix:?} must hold {{tenant}} and {{store}} once each, as whole topic levels"
            )));
        }
        if levels
            .iter()
            .any(|l| l.is_empty() || l.contains(['+', '#']) || l.starts_with('$'))
        {
            return Err(LayoutError(format!(
                "{prefix:?} must have no empty levels, wildcards or $ levels"
            )));
        }
        Ok(Layout { levels })
    }

    /// The prefix of every store, as a filter (`posedge/v1/+/+`).
    pub fn any_store(&self) -> String {
        self.levels
            .iter()
            .map(|l| match l.as_str() {
                "{tenant}" | "{store}" => "+",
                other => other,
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// One store's prefix.
    pub fn prefix_of(&self, key: &StoreKey) -> String {
        self.levels
            .iter()
            .map(|l| match l.as_str() {
                "{tenant}" => key.tenant.as_str(),
                "{store}" => key.store.as_str(),
                other => other,
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The topic of a command to one store.
    pub fn command_topic(&self, key: &StoreKey, name: &str) -> String {
        format!("{}/_agent/cmd/{name}", self.prefix_of(key))
    }

    /// The store and feed of a topic; `None` when it is not under the prefix.
    pub fn classify(&self, topic: &str) -> Option<(StoreKey, Feed)> {
        let parts: Vec<&str> = topic.split('/').collect();
        if parts.len() <= self.levels.len() {
            return None;
        }
        let (mut tenant, mut store) = (None, None);
        for (want, got) in self.levels.iter().zip(&parts) {
            match want.as_str() {
                "{tenant}" => tenant = Some(*got),
                "{store}" => store = Some(*got),
                lit if lit == *got => {}
                _ => return None,
            }
        }
        let key = StoreKey {
            tenant: tenant?.to_string(),
            store: store?.to_string(),
        };
        let feed = match &parts[self.levels.len()..] {
            ["_agent", "status"] => Feed::Status,
            ["_agent", "summary", _] => Feed::Summary,
            ["_agent", "reply", _] => Feed::Reply,
            ["_agent", ..] => Feed::Other,
            [_, "inventory"] => Feed::Inventory,
            [_, _] => Feed::Event,
            _ => Feed::Other,
        };
        Some((key, feed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_their_store_and_feed() {
        let l = Layout::default();
        let key = |t: &str, s: &str| StoreKey {
            tenant: t.into(),
            store: s.into(),
        };
        assert_eq!(
            l.classify("posedge/v1/acme/s-42/reg-1/transaction"),
            Some((key("acme", "s-42"), Feed::Event))
        );
        assert_eq!(
            l.classify("posedge/v1/acme/s-42/reg-1/inventory")
                .map(|x| x.1),
            Some(Feed::Inventory)
        );
        assert_eq!(
            l.classify("posedge/v1/a/b/_agent/summary/2026-11-27")
                .map(|x| x.1),
            Some(Feed::Summary)
        );
        assert_eq!(
            l.classify("posedge/v1/a/b/_agent/audit").map(|x| x.1),
            Some(Feed::Other)
        );
        assert_eq!(l.classify("other/v1/a/b/r/t"), None);
        assert_eq!(l.any_store(), "posedge/v1/+/+");
        assert_eq!(
            l.command_topic(&key("a", "b"), "resync"),
            "posedge/v1/a/b/_agent/cmd/resync"
        );
        let custom = Layout::parse("chain/{store}/x/{tenant}").unwrap();
        assert_eq!(
            custom.classify("chain/s1/x/t1/r/transaction"),
            Some((key("t1", "s1"), Feed::Event))
        );
        assert!(Layout::parse("posedge/{tenant}").is_err());
        assert!(Layout::parse("p/+/{tenant}/{store}").is_err());
    }
}
