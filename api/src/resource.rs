//! What the server does with each kind's own fields, as Kubernetes' registry strategies
//! do: defaulting, validation on create and on update. Every kind's type implements it
//! where the type is declared; metadata rules common to all kinds live in `validate`.

use crate::validate::Problems;

/// Which rule an object's name follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 subdomain (`web.example`): most kinds.
    Subdomain,
    /// A DNS-1123 label (`web`): names that become a DNS label (Namespaces, Services).
    Label,
    /// Any name that is one path segment (`system:secret-reader`): the RBAC kinds.
    PathSegment,
}

/// One kind's strategy.
pub trait Resource {
    /// The rule its name follows.
    const NAME: NameRule;
    /// Fills in what Kubernetes defaults. Idempotent.
    fn default_fields(&mut self);
    /// Problems with its own fields (paths from the object's root: `spec.replicas`).
    fn validate(&self, v: &mut Problems);
    /// Problems with a change from `old`: fields that may not change.
    fn validate_update(&self, old: &Self, v: &mut Problems);
}
