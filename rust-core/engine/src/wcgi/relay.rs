//! One request relayed to a long-lived instance: a yamux stream carrying it as HTTP/1.1,
//! bounded by the request's deadline, its client and the instance's life.

use std::sync::Arc;

use futures::future::Either;
use futures::AsyncReadExt;

use super::http1::{self, Relayed};
use super::instance::Instance;
use super::session::Session;
use crate::deadline::RequestWatch;
use crate::failure::{Failure, FailureKind};
use crate::host::Host;
use crate::request::RunSpec;

/// Relays one request over a stream of `instance`'s session.
pub(super) async fn relay(
    instance: &Instance,
    spec: &RunSpec,
    host: &Arc<dyn Host>,
) -> Result<(), Failure> {
    // The server bounds its body reads and response writes by the same deadline, so a
    // slow client cannot hold this thread inside them past it.
    let watch = RequestWatch::start(spec.limits.timeout, host.clone());
    let host = host.as_ref();
    let session = &instance.session;
    let gone = |e| Failure::new(FailureKind::InstanceGone, e);
    let relayed = async {
        let (stream, kept) = session.stream().await.map_err(gone)?;
        let mut relayed = exchange(session, stream, spec, host).await?;
        // A kept stream the guest closed just before this request came: nothing was
        // answered, so a request that changes nothing and has no body to replay is sent
        // again on a new stream.
        if relayed == Relayed::NoResponse && kept && replayable(spec) {
            let stream = session.open().await.map_err(gone)?;
            relayed = exchange(session, stream, spec, host).await?;
        }
        match relayed {
            Relayed::NoResponse => Err(http1::no_response()),
            Relayed::Reusable | Relayed::Spent => Ok(()),
        }
    };
    tokio::select! {
        result = relayed => result,
        () = watch.until_over() => Err(watch.ending()),
        () = session.wait_ended() => {
            Err(Failure::new(FailureKind::InstanceGone, "the WCGI instance ended"))
        }
    }
}

/// One request and its response on `stream`, which goes back to the session for a later
/// request when the exchange ended cleanly: the body sent whole and the response relayed
/// whole (see [`Relayed::Reusable`]).
async fn exchange(
    session: &Session,
    stream: yamux::Stream,
    spec: &RunSpec,
    host: &dyn Host,
) -> Result<Relayed, Failure> {
    let head_only = spec.http.method.eq_ignore_ascii_case("HEAD");
    let (mut rd, mut wr) = stream.split();
    let (relayed, sent_whole) = {
        let send = std::pin::pin!(http1::send_request(&mut wr, spec, host));
        let relay = std::pin::pin!(http1::relay_response(&mut rd, head_only, host));
        // Only the answer counts: a guest may answer (403, say) without reading the whole
        // body, and its answer must reach the client while the upload is still stalled on
        // the guest's window. What is left of the body is then the server's to drain or
        // close; a failed send (the client went away mid-body) shows in the answer too.
        match futures::future::select(send, relay).await {
            Either::Left((sent, relay)) => (relay.await?, sent.unwrap_or(false)),
            Either::Right((relayed, _)) => (relayed?, false),
        }
    };
    if relayed == Relayed::Reusable && sent_whole {
        if let Ok(stream) = rd.reunite(wr) {
            session.keep(stream);
        }
    }
    Ok(relayed)
}

/// A request that may be sent twice: a method that changes nothing, and no body.
fn replayable(spec: &RunSpec) -> bool {
    let safe = ["GET", "HEAD", "OPTIONS", "TRACE"];
    safe.iter()
        .any(|m| spec.http.method.eq_ignore_ascii_case(m))
        && spec.http.content_length.unwrap_or(0) == 0
}
