package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/spdystream"
)

// createStreamTimeout is createStreamResponseTimeout (apimachinery httpstream/spdy/connection.go).
const createStreamTimeout = 30 * time.Second

type spdyClientOptions struct {
	url          string
	protocols    stringList
	headers      stringList
	resizes      stringList
	stdinPath    string
	stdoutPath   string
	stderrPath   string
	tty          bool
	pingInterval time.Duration
	timeout      time.Duration
}

// spdyClientResult is the one JSON line spdy-client prints.
type spdyClientResult struct {
	Protocol    string `json:"protocol"`
	Error       string `json:"error"`
	StdoutBytes int64  `json:"stdout_bytes"`
	StderrBytes int64  `json:"stderr_bytes"`
	Pongs       int64  `json:"pongs"`
}

func spdyClientMain(args []string) error {
	fs := flag.NewFlagSet("spdy-client", flag.ContinueOnError)
	o := &spdyClientOptions{}
	fs.StringVar(&o.url, "url", "", "exec URL (http://host:port/path?command=...&stdout=true)")
	fs.Var(&o.protocols, "protocol", "X-Stream-Protocol-Version to offer (repeatable, in order)")
	fs.Var(&o.headers, "header", "extra request header 'Name: value' (repeatable)")
	fs.Var(&o.resizes, "resize", "terminal size WxH to send on the resize stream (repeatable)")
	fs.StringVar(&o.stdinPath, "stdin", "", "file copied to the stdin stream (default: empty)")
	fs.StringVar(&o.stdoutPath, "stdout", "", "file receiving stdout (default: discarded)")
	fs.StringVar(&o.stderrPath, "stderr", "", "file receiving stderr (default: discarded)")
	fs.BoolVar(&o.tty, "tty", false, "terminal mode (also implied by tty=true in the URL)")
	fs.DurationVar(&o.pingInterval, "ping-interval", 0, "ping the server at this interval")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.url == "" {
		return errors.New("spdy-client: --url is required")
	}
	if len(o.protocols) == 0 {
		o.protocols = stringList{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"}
	}
	go func() {
		time.Sleep(o.timeout)
		fmt.Fprintf(os.Stderr, "kpeer: spdy-client: timed out after %v\n", o.timeout)
		os.Exit(3)
	}()
	result, err := runSPDYClient(o)
	if err != nil {
		return err
	}
	line, err := json.Marshal(result)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}

// upgradeSPDY is the SPDY round tripper's Dial + NewConnection
// (apimachinery httpstream/spdy/roundtripper.go, client-go transport/spdy/spdy.go):
// a POST with one X-Stream-Protocol-Version line per protocol on a fresh connection.
func upgradeSPDY(o *spdyClientOptions) (*hijackedConn, string, error) {
	target, err := url.Parse(o.url)
	if err != nil {
		return nil, "", err
	}
	request, err := http.NewRequest(http.MethodPost, o.url, nil)
	if err != nil {
		return nil, "", err
	}
	request.Header.Set("Connection", "Upgrade")
	request.Header.Set("Upgrade", "SPDY/3.1")
	for _, protocol := range o.protocols {
		request.Header.Add("X-Stream-Protocol-Version", protocol)
	}
	for _, line := range o.headers {
		name, value, found := strings.Cut(line, ":")
		if !found {
			return nil, "", fmt.Errorf("bad --header %q (want 'Name: value')", line)
		}
		request.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	netConn, err := net.DialTimeout("tcp", target.Host, 10*time.Second)
	if err != nil {
		return nil, "", err
	}
	if err := request.Write(netConn); err != nil {
		netConn.Close()
		return nil, "", err
	}
	reader := bufio.NewReader(netConn)
	response, err := http.ReadResponse(reader, request)
	if err != nil {
		netConn.Close()
		return nil, "", fmt.Errorf("reading upgrade response: %v", err)
	}
	if response.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(response.Body, 64*1024))
		netConn.Close()
		return nil, "", fmt.Errorf("unable to upgrade connection: HTTP %d: %s", response.StatusCode, body)
	}
	if !strings.Contains(strings.ToLower(response.Header.Get("Connection")), "upgrade") ||
		!strings.Contains(strings.ToLower(response.Header.Get("Upgrade")), "spdy/3.1") {
		netConn.Close()
		return nil, "", fmt.Errorf("unable to upgrade: missing upgrade headers in response: %v", response.Header)
	}
	return &hijackedConn{Conn: netConn, reader: reader}, response.Header.Get("X-Stream-Protocol-Version"), nil
}

func runSPDYClient(o *spdyClientOptions) (*spdyClientResult, error) {
	query, err := url.Parse(o.url)
	if err != nil {
		return nil, err
	}
	values := query.Query()
	tty := o.tty || queryBool(values, "tty")
	wantStdin := queryBool(values, "stdin", "input")
	wantStdout := queryBool(values, "stdout", "output")
	wantStderr := queryBool(values, "stderr", "error") && !tty

	conn, protocol, err := upgradeSPDY(o)
	if err != nil {
		return nil, err
	}
	defer conn.closeNow()
	// No protocol header means v1 (client-go tools/remotecommand/spdy.go).
	version, known := spdyVersions[protocol]
	if protocol == "" {
		version, known = 1, true
	}
	if !known {
		return nil, fmt.Errorf("server negotiated unknown protocol %q", protocol)
	}
	session, err := spdystream.NewConnection(conn, false)
	if err != nil {
		return nil, err
	}
	// httpstream.NoOpNewStreamHandler: server-initiated streams are accepted.
	go session.Serve(func(stream *spdystream.Stream) { _ = stream.SendReply(http.Header{}, false) })

	result := &spdyClientResult{Protocol: protocol}
	stopPings := make(chan struct{})
	var pongs int64
	if o.pingInterval > 0 {
		go clientPings(session, o.pingInterval, stopPings, &pongs)
	}

	// client-go v2.go/v3.go createStreams: error first, then stdin, stdout, stderr
	// (not with a tty), resize (tty, v3+), each waiting for its SYN_REPLY.
	create := func(streamType string) (*spdystream.Stream, error) {
		headers := http.Header{}
		headers.Set("streamType", streamType)
		stream, err := session.CreateStream(headers, nil, false)
		if err != nil {
			return nil, err
		}
		if err := stream.WaitTimeout(createStreamTimeout); err != nil {
			return nil, fmt.Errorf("creating %s stream: %v", streamType, err)
		}
		return stream, nil
	}
	errorStream, err := create("error")
	if err != nil {
		return nil, err
	}
	var stdin, stdout, stderr, resize *spdystream.Stream
	for _, s := range []struct {
		wanted bool
		name   string
		into   **spdystream.Stream
	}{
		{wantStdin, "stdin", &stdin},
		{wantStdout, "stdout", &stdout},
		{wantStderr, "stderr", &stderr},
		{tty && version >= 3, "resize", &resize},
	} {
		if s.wanted {
			if *s.into, err = create(s.name); err != nil {
				return nil, err
			}
		}
	}

	// errorstream.go watchErrorStream: read the error stream to EOF.
	errorText := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(errorStream)
		errorText <- data
	}()
	if stdin != nil {
		go copyStdin(stdin, o.stdinPath)
	}
	if resize != nil {
		go sendResizes(resize, o.resizes)
	}
	var wg sync.WaitGroup
	var copyErr error
	var copyErrOnce sync.Once
	drain := func(stream *spdystream.Stream, path string, count *int64) {
		defer wg.Done()
		n, err := drainToFile(stream, path)
		*count = n
		if err != nil {
			copyErrOnce.Do(func() { copyErr = err })
		}
	}
	if stdout != nil {
		wg.Add(1)
		go drain(stdout, o.stdoutPath, &result.StdoutBytes)
	}
	if stderr != nil {
		wg.Add(1)
		go drain(stderr, o.stderrPath, &result.StderrBytes)
	}
	wg.Wait()
	result.Error = string(<-errorText)
	close(stopPings)
	result.Pongs = atomic.LoadInt64(&pongs)
	_ = session.Close()
	if copyErr != nil {
		return nil, copyErr
	}
	return result, nil
}

// copyStdin is streamProtocolV2.copyStdin: copy (in chunks of at most 32 KiB, as
// client-go's readerWrapper forces), then half-close the stream.
func copyStdin(stream *spdystream.Stream, path string) {
	defer stream.Close()
	if path == "" {
		return
	}
	file, err := os.Open(path)
	if err != nil {
		logf("spdy-client: stdin: %v", err)
		return
	}
	defer file.Close()
	if err := copyChunks(stream, file); err != nil {
		logf("spdy-client: copying stdin: %v", err)
	}
}

// sendResizes encodes each WxH as {"Width":W,"Height":H}\n (client-go v3.go).
func sendResizes(stream *spdystream.Stream, sizes []string) {
	encoder := json.NewEncoder(stream)
	for _, text := range sizes {
		width, height, found := strings.Cut(text, "x")
		w, werr := strconv.ParseUint(width, 10, 16)
		h, herr := strconv.ParseUint(height, 10, 16)
		if !found || werr != nil || herr != nil {
			logf("spdy-client: bad --resize %q", text)
			return
		}
		if err := encoder.Encode(&termSize{Width: uint16(w), Height: uint16(h)}); err != nil {
			return
		}
	}
}

func drainToFile(stream *spdystream.Stream, path string) (int64, error) {
	var sink io.Writer = io.Discard
	if path != "" {
		file, err := os.Create(path)
		if err != nil {
			return 0, err
		}
		defer file.Close()
		sink = file
	}
	return io.Copy(sink, stream)
}

// clientPings is the SPDY connection's sendPings (odd ping ids from a client).
func clientPings(session *spdystream.Connection, interval time.Duration, stop <-chan struct{}, pongs *int64) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		if _, err := session.Ping(); err != nil {
			return
		}
		atomic.AddInt64(pongs, 1)
	}
}
