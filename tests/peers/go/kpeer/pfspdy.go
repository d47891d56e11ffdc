package main

// SPDY port-forward, the kubelet's httpstream.go: every forwarded connection is an
// error-stream/data-stream pair matched by requestID.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/spdystream"
)

// serveSPDYPortForward answers a SPDY/3.1 upgrade offering portforward.k8s.io.
func serveSPDYPortForward(w http.ResponseWriter, r *http.Request, cfg *serverConfig, pod string) {
	if _, ok := negotiateSPDY(w, r, []string{portForwardProtocol}); !ok {
		return
	}
	if !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
		http.Error(w, fmt.Sprintf("unable to upgrade: missing upgrade headers in request: %#v", r.Header), http.StatusBadRequest)
		return
	}
	hijacker, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "unable to upgrade: unable to hijack response", http.StatusInternalServerError)
		return
	}
	w.Header().Add("Connection", "Upgrade")
	w.Header().Add("Upgrade", "SPDY/3.1")
	w.WriteHeader(http.StatusSwitchingProtocols)
	netConn, rw, err := hijacker.Hijack()
	if err != nil {
		logf("portforward spdy: hijack: %v", err)
		return
	}
	conn := &hijackedConn{Conn: netConn, reader: rw.Reader}
	defer conn.closeNow()
	runPortForwardSession(conn, cfg, pod)
}

// runPortForwardSession serves one SPDY port-forward session over conn (a hijacked
// socket or a tunnel) until the client goes away, then closes it as k8s does.
func runPortForwardSession(conn net.Conn, cfg *serverConfig, pod string) {
	session, err := spdystream.NewConnection(conn, true)
	if err != nil {
		logf("portforward spdy: new connection: %v", err)
		return
	}
	h := &pfSession{
		conn:    session,
		cfg:     cfg,
		pod:     pod,
		arrived: make(chan *spdystream.Stream, 1),
		pairs:   make(map[string]*pfPair),
		streams: make(map[*spdystream.Stream]struct{}),
		gone:    make(chan struct{}),
	}
	served := make(chan struct{})
	go func() {
		session.Serve(h.newStream)
		close(served)
	}()
	go func() {
		<-session.CloseChan()
		close(h.gone)
	}()
	if cfg.pingInterval > 0 {
		go pingSPDY(session, cfg.pingInterval, h.gone)
	}
	h.run()
	h.close()
	_ = conn.Close()
	waitOrTimeout(served, lingerTimeout+time.Second)
}

// pingSPDY pings at interval until stop is closed or a ping fails.
func pingSPDY(conn *spdystream.Connection, interval time.Duration, stop <-chan struct{}) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		if _, err := conn.Ping(); err != nil {
			return
		}
	}
}

type pfSession struct {
	conn    *spdystream.Connection
	cfg     *serverConfig
	pod     string
	arrived chan *spdystream.Stream
	gone    chan struct{}

	mu    sync.Mutex
	pairs map[string]*pfPair
	// streams are the accepted streams not yet done with: close resets them.
	streams map[*spdystream.Stream]struct{}
}

// validateStream is httpStreamReceived: a port header that is a uint16 > 0 and a
// streamType of "error" or "data"; anything else is reset.
func validateStream(headers http.Header) error {
	portText := headers.Get("port")
	if portText == "" {
		return fmt.Errorf("%q header is required", "port")
	}
	if _, err := parsePort(portText); err != nil {
		return err
	}
	switch streamType := headers.Get("streamType"); streamType {
	case "":
		return fmt.Errorf("%q header is required", "streamType")
	case "error", "data":
		return nil
	default:
		return fmt.Errorf("invalid stream type %q", streamType)
	}
}

// newStream is the spdy connection's newSpdyStream: a rejected stream is reset
// (RST_STREAM CANCEL), an accepted one gets an empty SYN_REPLY.
func (h *pfSession) newStream(stream *spdystream.Stream) {
	if err := validateStream(stream.Headers()); err != nil {
		logf("portforward spdy: stream %d rejected: %v", stream.Identifier(), err)
		_ = stream.Reset()
		return
	}
	h.mu.Lock()
	h.streams[stream] = struct{}{}
	h.mu.Unlock()
	if err := stream.SendReply(http.Header{}, false); err != nil {
		logf("portforward spdy: reply to stream %d: %v", stream.Identifier(), err)
		return
	}
	select {
	case h.arrived <- stream:
	case <-h.gone:
	}
}

// requestID is the requestID header, or (old clients) a pseudo id from the stream id:
// the error stream's id, the data stream's id minus 2.
func requestID(stream *spdystream.Stream) string {
	id := stream.Headers().Get("requestID")
	if id != "" {
		return id
	}
	switch stream.Headers().Get("streamType") {
	case "error":
		return strconv.Itoa(int(stream.Identifier()))
	case "data":
		return strconv.Itoa(int(stream.Identifier()) - 2)
	}
	return ""
}

// run pairs streams until the connection closes; each complete pair is forwarded.
func (h *pfSession) run() {
	for {
		select {
		case <-h.gone:
			return
		case stream := <-h.arrived:
			id := requestID(stream)
			pair, created := h.pair(id)
			if created {
				go h.monitor(pair)
			}
			complete, err := pair.add(stream)
			if err != nil {
				message := fmt.Sprintf("error processing stream for request %s: %v", id, err)
				logf("portforward spdy: %s", message)
				pair.printError(message)
			} else if complete {
				go h.forward(pair)
			}
		}
	}
}

func (h *pfSession) pair(id string) (*pfPair, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pair, ok := h.pairs[id]; ok {
		return pair, false
	}
	pair := &pfPair{requestID: id, complete: make(chan struct{})}
	h.pairs[id] = pair
	return pair, true
}

// monitor is monitorStreamPair: a pair must complete within the stream creation
// timeout (30 s), else the error stream (if any) gets the timeout text.
func (h *pfSession) monitor(pair *pfPair) {
	timer := time.NewTimer(h.cfg.pairTimeout)
	defer timer.Stop()
	select {
	case <-timer.C:
		message := fmt.Sprintf("(conn=%p, request=%s) timed out waiting for streams", h.conn, pair.requestID)
		logf("portforward spdy: %s", message)
		pair.printError(message)
	case <-pair.complete:
	case <-h.gone:
	}
	h.mu.Lock()
	delete(h.pairs, pair.requestID)
	h.mu.Unlock()
}

// forward is httpStreamHandler.portForward: on success both streams get a FIN; on
// failure the error text goes on the error stream and both streams are reset.
func (h *pfSession) forward(pair *pfPair) {
	port, _ := parsePort(pair.data.Headers().Get("port"))
	err := forwardToPod(port, pair.data, h.gone)
	defer h.forget(pair.data, pair.errorStream)
	if err == nil {
		_ = pair.data.Close()
		_ = pair.errorStream.Close()
		return
	}
	message := forwardError(port, h.pod, err)
	logf("portforward spdy: %s", message)
	if _, writeErr := pair.errorStream.Write([]byte(message)); writeErr != nil {
		logf("portforward spdy: write error stream: %v", writeErr)
	}
	_ = pair.data.Reset()
	_ = pair.errorStream.Reset()
}

// forget drops streams whose forward is over (k8s RemoveStreams): the table stays as
// small as the connections open.
func (h *pfSession) forget(streams ...*spdystream.Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, stream := range streams {
		delete(h.streams, stream)
	}
}

// close is k8s connection.Close: reset every stream not yet finished, then GOAWAY.
func (h *pfSession) close() {
	h.mu.Lock()
	for stream := range h.streams {
		_ = stream.Reset()
	}
	h.mu.Unlock()
	_ = h.conn.Close()
}

// pfPair is httpStreamPair.
type pfPair struct {
	requestID   string
	lock        sync.Mutex
	data        *spdystream.Stream
	errorStream *spdystream.Stream
	complete    chan struct{}
}

func (p *pfPair) add(stream *spdystream.Stream) (bool, error) {
	p.lock.Lock()
	defer p.lock.Unlock()
	switch stream.Headers().Get("streamType") {
	case "error":
		if p.errorStream != nil {
			return false, errors.New("error stream already assigned")
		}
		p.errorStream = stream
	case "data":
		if p.data != nil {
			return false, errors.New("data stream already assigned")
		}
		p.data = stream
	}
	complete := p.errorStream != nil && p.data != nil
	if complete {
		close(p.complete)
	}
	return complete, nil
}

func (p *pfPair) printError(message string) {
	p.lock.Lock()
	defer p.lock.Unlock()
	if p.errorStream != nil {
		_, _ = p.errorStream.Write([]byte(message))
	}
}
