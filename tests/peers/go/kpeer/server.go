package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// lingerTimeout bounds how long a finished session keeps reading after it has sent
// its last bytes and a FIN (see hijackedConn.Close).
const lingerTimeout = 2 * time.Second

type serverConfig struct {
	rejectWebSocket int
	rejectSPDY      int
	pingInterval    time.Duration
	streamTimeout   time.Duration
	// Port-forward knobs (portforward.go).
	rejectTunnel int
	pairTimeout  time.Duration
	tunnelCut    int
}

func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	cfg := &serverConfig{}
	fs.IntVar(&cfg.rejectWebSocket, "reject-websocket", 0, "answer every WebSocket upgrade with this HTTP status")
	fs.IntVar(&cfg.rejectSPDY, "reject-spdy", 0, "answer every SPDY upgrade with this HTTP status")
	fs.DurationVar(&cfg.pingInterval, "ping-interval", 0, "ping the client at this interval")
	// StreamCreationTimeout, apimachinery/pkg/util/remotecommand/constants.go.
	fs.DurationVar(&cfg.streamTimeout, "stream-timeout", 30*time.Second, "how long to wait for the SPDY streams")
	fs.IntVar(&cfg.rejectTunnel, "reject-tunnel", 0,
		"answer every SPDY-over-WebSocket tunnel upgrade with this HTTP status (clients fall back to SPDY)")
	// StreamCreationTimeout again: the kubelet waits this long for a port-forward pair.
	fs.DurationVar(&cfg.pairTimeout, "pair-timeout", 30*time.Second, "how long a port-forward stream pair may stay incomplete")
	fs.IntVar(&cfg.tunnelCut, "tunnel-cut", 0,
		"cut every tunnel message to at most this many bytes (0: one message per SPDY frame write)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		os.Exit(0)
	}()
	fmt.Printf("LISTENING %s\n", listener.Addr().String())
	_ = os.Stdout.Sync()
	server := &http.Server{Handler: &execHandler{cfg: cfg}, ErrorLog: nil}
	return server.Serve(listener)
}

type execHandler struct {
	cfg *serverConfig
}

// ServeHTTP answers discovery and pod GETs (api.go), serves port-forward on paths ending
// in /portforward (portforward.go) and exec on any other path: SPDY for "Upgrade: SPDY/3.1" (any method),
// WebSocket for "Upgrade: websocket".
func (h *execHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if serveAPI(w, r) {
		return
	}
	if isPortForwardPath(r.URL.Path) {
		h.servePortForward(w, r)
		return
	}
	upgrade := strings.ToLower(r.Header.Get("Upgrade"))
	switch {
	case strings.Contains(upgrade, "spdy/3.1"):
		if h.cfg.rejectSPDY != 0 {
			writeStatusResponse(w, h.cfg.rejectSPDY, "spdy disabled by test")
			return
		}
		opts, ok := parseExecOptions(w, r)
		if ok {
			serveSPDY(w, r, h.cfg, opts)
		}
	case strings.Contains(upgrade, "websocket"):
		if h.cfg.rejectWebSocket != 0 {
			writeStatusResponse(w, h.cfg.rejectWebSocket, "websocket disabled by test")
			return
		}
		opts, ok := parseExecOptions(w, r)
		if ok {
			serveWebSocket(w, r, h.cfg, opts)
		}
	default:
		// apimachinery/pkg/util/proxy/upgradeaware.go answers non-upgrade requests so.
		writeStatusResponse(w, http.StatusBadRequest, "Upgrade request required")
	}
}

type execOptions struct {
	stdin, stdout, stderr, tty bool
	command                    []string
}

// queryBool reads the first of names present in the query. Absent, "0" and "false"
// (any case) are false, anything else true (apimachinery/pkg/runtime/conversion.go).
func queryBool(query url.Values, names ...string) bool {
	for _, name := range names {
		if values, ok := query[name]; ok && len(values) > 0 {
			value := strings.ToLower(values[0])
			return value != "0" && value != "false"
		}
	}
	return false
}

// parseExecOptions is the kubelet's NewOptions (cri/streaming/remotecommand/httpstream.go),
// accepting both the API-server names (stdin, stdout, stderr) and the kubelet's
// (input, output, error). It answers 400 itself when the request is unusable.
func parseExecOptions(w http.ResponseWriter, r *http.Request) (*execOptions, bool) {
	query := r.URL.Query()
	opts := &execOptions{
		stdin:   queryBool(query, "stdin", "input"),
		stdout:  queryBool(query, "stdout", "output"),
		stderr:  queryBool(query, "stderr", "error"),
		tty:     queryBool(query, "tty"),
		command: query["command"],
	}
	if opts.tty && opts.stderr {
		// "Access to exec with tty and stderr is not supported, bypassing stderr".
		opts.stderr = false
	}
	if !opts.stdin && !opts.stdout && !opts.stderr {
		http.Error(w, "you must specify at least 1 of stdin, stdout, stderr", http.StatusBadRequest)
		return nil, false
	}
	return opts, true
}

// hijackedConn is an upgraded connection: reads go through the HTTP server's buffered
// reader (it may already hold the first frames), and Close is a lingering close.
type hijackedConn struct {
	net.Conn
	reader    *bufio.Reader
	closeOnce sync.Once
}

func (c *hijackedConn) Read(p []byte) (int, error) { return c.reader.Read(p) }

// Close sends FIN and bounds further reads instead of closing the socket: closing with
// unread input makes the kernel send RST, which can destroy the peer's copy of the
// status and close frames it has not read yet. The session calls closeNow once its
// reader has stopped. The peer sees the same bytes and a FIN, as from a kubelet.
func (c *hijackedConn) Close() error {
	c.closeOnce.Do(func() {
		if tcp, ok := c.Conn.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	})
	return nil
}

func (c *hijackedConn) closeNow() {
	_ = c.Close()
	_ = c.Conn.Close()
}

// waitOrTimeout waits for done, at most d.
func waitOrTimeout(done <-chan struct{}, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// handleResizeEvents is the kubelet's decoder loop (cri/streaming/remotecommand/
// httpstream.go): a streaming json.Decoder until the first error.
func handleResizeEvents(stream io.Reader, events chan<- termSize, done <-chan struct{}) {
	defer close(events)
	decoder := json.NewDecoder(stream)
	for {
		size := termSize{}
		if err := decoder.Decode(&size); err != nil {
			return
		}
		select {
		case events <- size:
		case <-done:
			return
		}
	}
}
