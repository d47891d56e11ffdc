package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/spdystream"
)

// spdyProtocols is SupportedStreamingProtocols, server preference order
// (apimachinery/pkg/util/remotecommand/constants.go); the version number of each.
var spdyProtocols = []string{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"}

var spdyVersions = map[string]int{
	"v5.channel.k8s.io": 5,
	"v4.channel.k8s.io": 4,
	"v3.channel.k8s.io": 3,
	"v2.channel.k8s.io": 2,
	"channel.k8s.io":    1,
}

// commaSeparatedValues splits every header line on commas and trims the parts
// (httpstream.go commaSeparatedHeaderValues).
func commaSeparatedValues(lines []string) []string {
	var values []string
	for _, line := range lines {
		for _, part := range strings.Split(line, ",") {
			values = append(values, strings.TrimSpace(part))
		}
	}
	return values
}

// spdyHandshake is httpstream.Handshake (apimachinery/pkg/util/httpstream/httpstream.go)
// for exec.
func spdyHandshake(w http.ResponseWriter, r *http.Request) (string, bool) {
	return negotiateSPDY(w, r, spdyProtocols)
}

// negotiateSPDY is httpstream.Handshake: the client's first protocol that the server
// supports wins.
func negotiateSPDY(w http.ResponseWriter, r *http.Request, serverProtocols []string) (string, bool) {
	clientProtocols := commaSeparatedValues(r.Header[http.CanonicalHeaderKey("X-Stream-Protocol-Version")])
	if len(clientProtocols) == 0 {
		http.Error(w, "unable to upgrade: X-Stream-Protocol-Version is required", http.StatusBadRequest)
		return "", false
	}
	for _, client := range clientProtocols {
		for _, server := range serverProtocols {
			if client == server {
				w.Header().Add("X-Stream-Protocol-Version", client)
				return client, true
			}
		}
	}
	for _, server := range serverProtocols {
		w.Header().Add("X-Accepted-Stream-Protocol-Versions", server)
	}
	http.Error(w, fmt.Sprintf("unable to upgrade: unable to negotiate protocol: client supports %v, server accepts %v",
		clientProtocols, serverProtocols), http.StatusForbidden)
	return "", false
}

// spdyExecStreams is what waitForStreams collects.
type spdyExecStreams struct {
	errorStream, stdin, stdout, stderr, resize *spdystream.Stream
}

// serveSPDY is the kubelet's ServeExec over SPDY (cri/streaming/remotecommand/
// {httpstream,exec}.go, apimachinery httpstream/spdy/{upgrade,connection}.go).
func serveSPDY(w http.ResponseWriter, r *http.Request, cfg *serverConfig, opts *execOptions) {
	protocol, ok := spdyHandshake(w, r)
	if !ok {
		return
	}
	version := spdyVersions[protocol]
	// spdy/upgrade.go UpgradeResponse.
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
		logf("spdy: hijack: %v", err)
		return
	}
	conn := &hijackedConn{Conn: netConn, reader: rw.Reader}
	defer conn.closeNow()
	session, err := spdystream.NewConnection(conn, true)
	if err != nil {
		logf("spdy: new connection: %v", err)
		return
	}
	s := &spdyServerSession{conn: session, arrived: make(chan *spdystream.Stream, 64)}
	served := make(chan struct{})
	go func() {
		session.Serve(s.newStream)
		close(served)
	}()
	s.run(cfg, opts, version)
	s.close()
	// spdystream closes the socket itself once no stream is left; make sure the FIN
	// goes out right after GOAWAY even if a late stream is still registered.
	_ = conn.Close()
	// The lingering close bounds this wait.
	waitOrTimeout(served, lingerTimeout+time.Second)
}

type spdyServerSession struct {
	conn    *spdystream.Connection
	mu      sync.Mutex
	streams []*spdystream.Stream
	arrived chan *spdystream.Stream
	pongs   int64
}

// newStream accepts every stream with an empty SYN_REPLY, as k8s's newSpdyStream does;
// unknown types are replied to as well and then ignored by run.
func (s *spdyServerSession) newStream(stream *spdystream.Stream) {
	s.mu.Lock()
	s.streams = append(s.streams, stream)
	s.mu.Unlock()
	if err := stream.SendReply(http.Header{}, false); err != nil {
		logf("spdy: reply to stream %d: %v", stream.Identifier(), err)
		return
	}
	select {
	case s.arrived <- stream:
	default:
		logf("spdy: too many streams; stream %d ignored", stream.Identifier())
	}
}

func (s *spdyServerSession) run(cfg *serverConfig, opts *execOptions, version int) {
	gone := make(chan struct{})
	go func() {
		<-s.conn.CloseChan()
		close(gone)
	}()
	if cfg.pingInterval > 0 {
		stopPings := make(chan struct{})
		defer func() {
			close(stopPings)
			fmt.Fprintf(os.Stderr, "PONGS %d\n", atomic.LoadInt64(&s.pongs))
		}()
		go s.sendPings(cfg.pingInterval, stopPings)
	}
	streams, ok := s.waitForStreams(opts, version, cfg.streamTimeout, gone)
	if !ok {
		return
	}
	if version == 1 {
		// v1ProtocolHandler.waitForStreams keeps two misplaced defers from kubelet 1.0:
		// it half-closes stdin and resets the error stream once all streams arrived.
		if streams.stdin != nil {
			_ = streams.stdin.Close()
		}
		if streams.errorStream != nil {
			_ = streams.errorStream.Reset()
		}
	}
	env := &execEnv{tty: opts.tty, gone: gone}
	if streams.stdin != nil {
		env.stdin = streams.stdin
	}
	if streams.stdout != nil {
		env.stdout = streams.stdout
	}
	if streams.stderr != nil {
		env.stderr = streams.stderr
	}
	if opts.tty && streams.resize != nil {
		events := make(chan termSize, 16)
		go handleResizeEvents(streams.resize, events, gone)
		env.resize = events
	}
	result := runCommand(opts.command, env)
	if streams.errorStream != nil {
		writeSPDYStatus(streams.errorStream, version, result)
	}
}

// waitForStreams is v3ProtocolHandler.waitForStreams & co: streams in any order; one
// error stream plus one per requested stdio stream plus resize (tty, v3+).
func (s *spdyServerSession) waitForStreams(opts *execOptions, version int, timeout time.Duration, gone <-chan struct{}) (*spdyExecStreams, bool) {
	expected := 1
	for _, wanted := range []bool{opts.stdin, opts.stdout, opts.stderr, opts.tty && version >= 3} {
		if wanted {
			expected++
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	streams := &spdyExecStreams{}
	for received := 0; received < expected; {
		select {
		case stream := <-s.arrived:
			switch streamType := stream.Headers().Get("streamType"); streamType {
			case "error":
				streams.errorStream = stream
			case "stdin":
				streams.stdin = stream
			case "stdout":
				streams.stdout = stream
			case "stderr":
				streams.stderr = stream
			case "resize":
				streams.resize = stream
			default:
				logf("spdy: unexpected stream type: %q", streamType)
				continue
			}
			received++
		case <-timer.C:
			logf("spdy: timed out waiting for client to create streams")
			return nil, false
		case <-gone:
			return nil, false
		}
	}
	return streams, true
}

// writeSPDYStatus is v1WriteStatusFunc (v1-v3: the message, on failure only) or
// v4WriteStatusFunc (the Status JSON, always).
func writeSPDYStatus(stream *spdystream.Stream, version int, result error) {
	st := execStatus(result)
	var payload []byte
	if version >= 4 {
		payload = mustJSON(st)
	} else if st.Status != "Success" {
		payload = []byte(st.Message)
	}
	if len(payload) > 0 {
		if _, err := stream.Write(payload); err != nil {
			logf("spdy: write status: %v", err)
		}
	}
}

func (s *spdyServerSession) sendPings(interval time.Duration, stop <-chan struct{}) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		if _, err := s.conn.Ping(); err != nil {
			return
		}
		atomic.AddInt64(&s.pongs, 1)
	}
}

// close is k8s connection.Close: RST_STREAM CANCEL for every stream this side has not
// FIN'd (Stream.Reset), then GOAWAY(OK); spdystream then closes the socket.
func (s *spdyServerSession) close() {
	s.mu.Lock()
	for _, stream := range s.streams {
		_ = stream.Reset()
	}
	s.mu.Unlock()
	_ = s.conn.Close()
}
