//! `AllowAll`: admits every client and allows every topic. For development only.

use super::{Access, ClientInfo, Hook, Point, Provides};

/// Allows every connection and every publish/subscribe. Development only.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl Hook for AllowAll {
    fn id(&self) -> &str {
        "allow-all"
    }
    fn provides(&self) -> Provides {
        Provides::of(&[Point::OnConnectAuthenticate, Point::OnAclCheck])
    }
    fn on_connect_authenticate(&mut self, _: &ClientInfo<'_>, _: Option<&[u8]>) -> bool {
        true
    }
    fn on_acl_check(&mut self, _: &ClientInfo<'_>, _: &str, _: Access) -> bool {
        true
    }
}
