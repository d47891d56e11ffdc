package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket exec subprotocols this peer accepts: the kubelet/CRI set
// (cri/streaming/remotecommand/websocket.go) plus v5, which upstream only the API
// server's stream translator speaks (apiserver/pkg/util/proxy/websocket.go). "" is
// what a client that offers nothing gets; it behaves as channel.k8s.io.
var wsProtocols = map[string]bool{
	"v5.channel.k8s.io":        true,
	"v4.channel.k8s.io":        true,
	"v4.base64.channel.k8s.io": true,
	"channel.k8s.io":           true,
	"base64.channel.k8s.io":    true,
	"":                         true,
}

const (
	wsStdin      = 0
	wsStdout     = 1
	wsStderr     = 2
	wsError      = 3
	wsResize     = 4
	wsChannels   = 5
	wsCloseMark  = 255
	wsMaxMessage = 32 << 20 // x/net/websocket DefaultMaxPayloadBytes
	wsWriteWait  = 10 * time.Second
)

// negotiateWebSocket walks the client's list (first Sec-WebSocket-Protocol line, split
// on commas) and picks the first supported name: client preference wins, as in
// wsstream/conn.go handshake. No header means [""].
func negotiateWebSocket(r *http.Request) (string, []string, bool) {
	offered := websocket.Subprotocols(r)
	if len(offered) == 0 {
		offered = []string{""}
	}
	for _, name := range offered {
		if wsProtocols[name] {
			return name, offered, true
		}
	}
	return "", offered, false
}

func serveWebSocket(w http.ResponseWriter, r *http.Request, cfg *serverConfig, opts *execOptions) {
	protocol, offered, ok := negotiateWebSocket(r)
	if !ok {
		writeStatusResponse(w, http.StatusForbidden, fmt.Sprintf(
			"unable to upgrade: unable to negotiate protocol: client supports %q, server accepts %q",
			offered, []string{"v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
				"channel.k8s.io", "base64.channel.k8s.io"}))
		return
	}
	// Subprotocols stays nil: gorilla would let the server's order win. The chosen
	// name goes in the response header instead (selectSubprotocol uses it then).
	upgrader := websocket.Upgrader{
		ReadBufferSize:  32*1024 + 1024,
		WriteBufferSize: 32*1024 + 1024,
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	header := http.Header{}
	if protocol != "" {
		header.Set("Sec-WebSocket-Protocol", protocol)
	}
	ws, err := upgrader.Upgrade(w, r, header)
	if err != nil {
		logf("websocket: upgrade: %v", err) // gorilla already answered the request
		return
	}
	s := newWSSession(ws, protocol, opts)
	s.serve(cfg)
}

type wsSession struct {
	ws       *websocket.Conn
	protocol string
	base64   bool
	v5       bool
	json     bool // v4/v5: the status is a Status document
	opts     *execOptions
	writeMu  sync.Mutex
	pongs    int64

	stdinR, resizeR *io.PipeReader
	stdinW, resizeW *io.PipeWriter
	readDone        chan struct{}
}

func newWSSession(ws *websocket.Conn, protocol string, opts *execOptions) *wsSession {
	s := &wsSession{
		ws:       ws,
		protocol: protocol,
		base64:   strings.Contains(protocol, "base64"),
		v5:       protocol == "v5.channel.k8s.io", // case-sensitive, as wsstream
		json:     strings.HasPrefix(protocol, "v4.") || strings.HasPrefix(protocol, "v5."),
		opts:     opts,
		readDone: make(chan struct{}),
	}
	if opts.stdin {
		s.stdinR, s.stdinW = io.Pipe()
	}
	if opts.tty {
		s.resizeR, s.resizeW = io.Pipe()
	}
	return s
}

// send writes one unfragmented message: binary [ch]+payload, or text '0'+ch followed
// by standard base64 (wsstream/conn.go Conn.write).
func (s *wsSession) send(channel byte, payload []byte) error {
	var messageType int
	var message []byte
	if s.base64 {
		messageType = websocket.TextMessage
		message = make([]byte, 1+base64.StdEncoding.EncodedLen(len(payload)))
		message[0] = '0' + channel
		base64.StdEncoding.Encode(message[1:], payload)
	} else {
		messageType = websocket.BinaryMessage
		message = make([]byte, 1+len(payload))
		message[0] = channel
		copy(message[1:], payload)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_ = s.ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
	return s.ws.WriteMessage(messageType, message)
}

type wsChannelWriter struct {
	session *wsSession
	channel byte
}

func (c wsChannelWriter) Write(p []byte) (int, error) {
	if err := c.session.send(c.channel, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *wsSession) serve(cfg *serverConfig) {
	defer s.ws.Close()
	s.ws.SetReadLimit(wsMaxMessage)
	// x/net/websocket (the kubelet's library) does not echo a client's close frame:
	// the receive loop just ends, and the session's own close 1000 follows the status.
	s.ws.SetCloseHandler(func(int, string) error { return nil })
	if cfg.pingInterval > 0 {
		s.ws.SetPongHandler(func(string) error {
			atomic.AddInt64(&s.pongs, 1)
			return nil
		})
	}
	go s.readLoop()
	// One empty message on the lowest writable stdio channel announces the session
	// (cri/streaming/remotecommand/websocket.go createWebSocketStreams).
	hello := byte(wsError)
	if s.opts.stdout {
		hello = wsStdout
	} else if s.opts.stderr {
		hello = wsStderr
	}
	if err := s.send(hello, nil); err != nil {
		logf("websocket: hello: %v", err)
		return
	}
	stopPings := make(chan struct{})
	if cfg.pingInterval > 0 {
		go s.sendPings(cfg.pingInterval, stopPings)
	}
	env := &execEnv{tty: s.opts.tty, gone: s.readDone}
	if s.stdinR != nil {
		env.stdin = s.stdinR
	}
	if s.opts.stdout {
		env.stdout = wsChannelWriter{s, wsStdout}
	}
	if s.opts.stderr {
		env.stderr = wsChannelWriter{s, wsStderr}
	}
	if s.resizeR != nil {
		events := make(chan termSize, 16)
		go handleResizeEvents(s.resizeR, events, s.readDone)
		env.resize = events
	}
	result := runCommand(s.opts.command, env)
	// Unblock the reader if it is stuck handing data to a command that is done.
	for _, reader := range []*io.PipeReader{s.stdinR, s.resizeR} {
		if reader != nil {
			_ = reader.CloseWithError(io.ErrClosedPipe)
		}
	}
	s.writeStatus(result)
	close(stopPings)
	if cfg.pingInterval > 0 {
		fmt.Fprintf(os.Stderr, "PONGS %d\n", atomic.LoadInt64(&s.pongs))
	}
	s.finish()
}

func (s *wsSession) writeStatus(result error) {
	st := execStatus(result)
	var payload []byte
	if s.json {
		payload = mustJSON(st)
	} else if st.Status != "Success" {
		payload = []byte(st.Message)
	}
	if len(payload) == 0 {
		return
	}
	if err := s.send(wsError, payload); err != nil {
		logf("websocket: write status: %v", err)
	}
}

// finish sends close 1000 (x/net Conn.Close) and then closes TCP; the close is a
// lingering one (FIN, then bounded reading) so that an RST cannot destroy the status.
func (s *wsSession) finish() {
	message := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := s.ws.WriteControl(websocket.CloseMessage, message, time.Now().Add(wsWriteWait)); err != nil {
		logf("websocket: write close: %v", err)
	}
	raw := s.ws.UnderlyingConn()
	if tcp, ok := raw.(interface{ CloseWrite() error }); ok {
		_ = tcp.CloseWrite()
	}
	_ = raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	waitOrTimeout(s.readDone, lingerTimeout+time.Second)
}

// readLoop is wsstream Conn.handle: zero-length messages are ignored, unknown channels
// dropped, data for channels that are not read discarded, and (v5 only) [255, ch]
// closes channel ch for reading; a malformed CLOSE aborts the connection.
func (s *wsSession) readLoop() {
	defer func() {
		// The client is gone: the process sees EOF on stdin.
		for _, writer := range []*io.PipeWriter{s.stdinW, s.resizeW} {
			if writer != nil {
				_ = writer.Close()
			}
		}
		close(s.readDone)
	}()
	for {
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			return
		}
		if len(data) == 0 {
			continue
		}
		if s.v5 && data[0] == wsCloseMark {
			if len(data) != 2 || data[1] >= wsChannels {
				logf("websocket: invalid CLOSE message % x", data)
				_ = s.ws.UnderlyingConn().Close()
				return
			}
			s.closeChannel(data[1])
			continue
		}
		channel, payload, ok := s.decode(data)
		if !ok || channel >= wsChannels {
			continue
		}
		switch {
		case channel == wsStdin && s.stdinW != nil:
			_, _ = s.stdinW.Write(payload)
		case channel == wsResize && s.resizeW != nil:
			_, _ = s.resizeW.Write(payload)
		}
	}
}

func (s *wsSession) decode(data []byte) (byte, []byte, bool) {
	if !s.base64 {
		return data[0], data[1:], true
	}
	payload, err := base64.StdEncoding.DecodeString(string(data[1:]))
	if err != nil {
		return 0, nil, false // dropped (and logged) by wsstream
	}
	return data[0] - '0', payload, true
}

func (s *wsSession) closeChannel(channel byte) {
	switch {
	case channel == wsStdin && s.stdinW != nil:
		_ = s.stdinW.Close()
	case channel == wsResize && s.resizeW != nil:
		_ = s.resizeW.Close()
	}
}

func (s *wsSession) sendPings(interval time.Duration, stop <-chan struct{}) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		if err := s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteWait)); err != nil {
			return
		}
	}
}
