package main

// WebSocket port-forward, the kubelet's cri/streaming/portforward/websocket.go: one TCP
// connection per port of ?ports=, channel 2i data, 2i+1 error, the port as 2 bytes
// little-endian first on both, no half-close.

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// pfWebSocketProtocols is what the kubelet's wsstream.NewConn accepts for
// port-forward: "" (no header) and v4 binary behave alike, v4 base64 is text.
var pfWebSocketProtocols = map[string]bool{
	"":                         true,
	"v4.channel.k8s.io":        true,
	"v4.base64.channel.k8s.io": true,
}

// portsFromQuery reads "ports" (the API server's name; repeated and/or comma-separated)
// or, without it, "port" (the kubelet's, comma-separated), as a uint16 > 0 each.
func portsFromQuery(r *http.Request) ([]uint16, error) {
	query := r.URL.Query()
	values := query["ports"]
	if len(values) == 0 {
		values = query["port"]
	}
	var texts []string
	for _, value := range values {
		for _, part := range strings.Split(value, ",") {
			texts = append(texts, strings.TrimSpace(part))
		}
	}
	if len(texts) == 0 {
		return nil, fmt.Errorf("query parameter %q is required", "port")
	}
	ports := make([]uint16, 0, len(texts))
	for _, text := range texts {
		port, err := parsePort(text)
		if err != nil {
			return nil, err
		}
		ports = append(ports, port)
	}
	return ports, nil
}

func serveWebSocketPortForward(w http.ResponseWriter, r *http.Request, cfg *serverConfig, pod string) {
	ports, err := portsFromQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	offered := websocket.Subprotocols(r)
	if len(offered) == 0 {
		offered = []string{""}
	}
	protocol, found := "", false
	for _, name := range offered {
		if pfWebSocketProtocols[name] {
			protocol, found = name, true
			break
		}
	}
	if !found {
		writeStatusResponse(w, http.StatusForbidden, fmt.Sprintf(
			"unable to upgrade: requested protocol(s) are not supported: %q; supports %q",
			offered, []string{"", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"}))
		return
	}
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
		logf("portforward websocket: upgrade: %v", err)
		return
	}
	s := &pfWSSession{ws: ws, base64: strings.Contains(protocol, "base64"), pod: pod,
		readDone: make(chan struct{})}
	s.serve(cfg, ports)
}

type pfWSSession struct {
	ws       *websocket.Conn
	base64   bool
	pod      string
	writeMu  sync.Mutex
	readDone chan struct{}
	inputs   []*io.PipeWriter // channel 2i's bytes, per port
}

// send writes one message on channel: binary [ch]+payload or text '0'+ch+base64.
func (s *pfWSSession) send(channel int, payload []byte) error {
	messageType := websocket.BinaryMessage
	var message []byte
	if s.base64 {
		messageType = websocket.TextMessage
		message = make([]byte, 1+base64.StdEncoding.EncodedLen(len(payload)))
		message[0] = '0' + byte(channel)
		base64.StdEncoding.Encode(message[1:], payload)
	} else {
		message = make([]byte, 1+len(payload))
		message[0] = byte(channel)
		copy(message[1:], payload)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_ = s.ws.SetWriteDeadline(time.Now().Add(wsWriteWait))
	return s.ws.WriteMessage(messageType, message)
}

// pfChannel is one port's data channel as the pod copy sees it.
type pfChannel struct {
	session *pfWSSession
	channel int
	input   *io.PipeReader
}

func (c pfChannel) Read(p []byte) (int, error) { return c.input.Read(p) }

func (c pfChannel) Write(p []byte) (int, error) {
	if err := c.session.send(c.channel, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *pfWSSession) serve(cfg *serverConfig, ports []uint16) {
	defer s.ws.Close()
	s.ws.SetReadLimit(wsMaxMessage)
	s.ws.SetCloseHandler(func(int, string) error { return nil })
	readers := make([]*io.PipeReader, len(ports))
	s.inputs = make([]*io.PipeWriter, len(ports))
	for i := range ports {
		readers[i], s.inputs[i] = io.Pipe()
	}
	go s.readLoop()
	// The port, little-endian, opens every channel of every port.
	for i, port := range ports {
		prefix := make([]byte, 2)
		binary.LittleEndian.PutUint16(prefix, port)
		if s.send(2*i, prefix) != nil || s.send(2*i+1, prefix) != nil {
			logf("portforward websocket: port prefix: client gone")
			return
		}
	}
	stopPings := make(chan struct{})
	if cfg.pingInterval > 0 {
		go s.sendPings(cfg.pingInterval, stopPings)
	}
	var wg sync.WaitGroup
	for i, port := range ports {
		wg.Add(1)
		go func(i int, port uint16) {
			defer wg.Done()
			channel := pfChannel{session: s, channel: 2 * i, input: readers[i]}
			err := forwardToPod(port, channel, s.readDone)
			// Stop taking this port's input: the read loop must never block on it.
			_ = readers[i].CloseWithError(io.ErrClosedPipe)
			if err != nil {
				message := forwardError(port, s.pod, err)
				logf("portforward websocket: %s", message)
				if sendErr := s.send(2*i+1, []byte(message)); sendErr != nil {
					logf("portforward websocket: write error channel: %v", sendErr)
				}
			}
		}(i, port)
	}
	wg.Wait()
	close(stopPings)
	s.finish()
}

// finish sends close 1000 once every port is done, then a lingering close.
func (s *pfWSSession) finish() {
	message := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = s.ws.WriteControl(websocket.CloseMessage, message, time.Now().Add(wsWriteWait))
	raw := s.ws.UnderlyingConn()
	if tcp, ok := raw.(interface{ CloseWrite() error }); ok {
		_ = tcp.CloseWrite()
	}
	_ = raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	waitOrTimeout(s.readDone, lingerTimeout+time.Second)
}

// readLoop hands channel 2i's bytes to port i; error channels and unknown channels
// are dropped (wsstream ignores them), as are empty messages.
func (s *pfWSSession) readLoop() {
	defer func() {
		for _, input := range s.inputs {
			_ = input.Close()
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
		channel, payload := int(data[0]), data[1:]
		if s.base64 {
			decoded, err := base64.StdEncoding.DecodeString(string(payload))
			if err != nil {
				continue
			}
			channel, payload = int(data[0])-'0', decoded
		}
		if channel < 0 || channel%2 != 0 || channel/2 >= len(s.inputs) || len(payload) == 0 {
			continue
		}
		_, _ = s.inputs[channel/2].Write(payload)
	}
}

func (s *pfWSSession) sendPings(interval time.Duration, stop <-chan struct{}) {
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
