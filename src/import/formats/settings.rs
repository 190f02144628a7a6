//! The settings an extended `auth.json` carries besides credentials: the
//! provider preferences and the last provider selection.

use serde_json::{Map, Value};

use super::document::{Reader, Seg};
use super::{LastSelection, ParseError, ProviderPreferences};

impl Reader<'_> {
    pub(super) fn preferences(
        &mut self,
        root: &mut Map<String, Value>,
    ) -> Result<Option<ProviderPreferences>, ParseError> {
        const P: &[Seg] = &[Seg::Key("provider_preferences")];
        let Some(p) = self.object(root, &[], "provider_preferences")? else {
            return Ok(None);
        };
        let prefs = ProviderPreferences {
            preferred_provider: self.string(p, P, "preferred_provider")?,
            fallback_enabled: self.boolean(p, P, "fallback_enabled")?,
            selection_strategy: self.string(p, P, "selection_strategy")?,
            cost_optimization: self.boolean(p, P, "cost_optimization")?,
        };
        let known = [
            "preferred_provider",
            "fallback_enabled",
            "selection_strategy",
            "cost_optimization",
        ];
        self.unknown_fields(P, p, &known);
        Ok(Some(prefs))
    }

    pub(super) fn last_selection(
        &mut self,
        root: &mut Map<String, Value>,
    ) -> Result<Option<LastSelection>, ParseError> {
        const P: &[Seg] = &[Seg::Key("last_provider_selection")];
        let Some(s) = self.object(root, &[], "last_provider_selection")? else {
            return Ok(None);
        };
        let selection = LastSelection {
            provider: self.string(s, P, "last_used_provider")?,
            reason: self.string(s, P, "selection_reason")?,
            timestamp: self.datetime(s, P, "timestamp")?,
            task_context: self.string(s, P, "task_context")?,
        };
        let known = [
            "last_used_provider",
            "selection_reason",
            "timestamp",
            "task_context",
        ];
        self.unknown_fields(P, s, &known);
        Ok(Some(selection))
    }
}
