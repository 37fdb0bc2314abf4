//! One request relayed to a long-lived instance: a new yamux stream carrying it as
//! HTTP/1.1, bounded by the request's deadline, its client and the instance's life.

use std::sync::Arc;

use futures::AsyncReadExt;

use super::http1;
use super::instance::Instance;
use crate::deadline::RequestWatch;
use crate::failure::{Failure, FailureKind};
use crate::host::Host;
use crate::request::RunSpec;

/// Relays one request over a new stream of `instance`'s session.
pub(super) async fn relay(
    instance: &Instance,
    spec: &RunSpec,
    host: &Arc<dyn Host>,
) -> Result<(), Failure> {
    // The server bounds its body reads and response writes by the same deadline, so a
    // slow client cannot hold this thread inside them past it.
    let watch = RequestWatch::start(spec.limits.timeout, host.clone());
    let host = host.as_ref();
    let head_only = spec.http.method.eq_ignore_ascii_case("HEAD");
    let exchange = async {
        let stream = instance
            .session
            .open()
            .await
            .map_err(|e| Failure::new(FailureKind::InstanceGone, e))?;
        let (rd, wr) = stream.split();
        let send = std::pin::pin!(http1::send_request(wr, spec, host));
        let relay = std::pin::pin!(http1::relay_response(rd, head_only, host));
        // Only the answer counts: a guest may answer (403, say) without reading the whole
        // body, and its answer must reach the client while the upload is still stalled on
        // the guest's window. What is left of the body is then the server's to drain or
        // close; a failed send (the client went away mid-body) shows in the answer too.
        match futures::future::select(send, relay).await {
            futures::future::Either::Left((_, relay)) => relay.await,
            futures::future::Either::Right((relayed, _)) => relayed,
        }
    };
    tokio::select! {
        result = exchange => result,
        () = watch.until_over() => Err(watch.ending()),
        () = instance.session.wait_ended() => {
            Err(Failure::new(FailureKind::InstanceGone, "the WCGI instance ended"))
        }
    }
}
