package main

// SPDY tunnelled in WebSocket (SPDY/3.1+portforward.k8s.io): the API server's
// TunnelingHandler (apiserver/pkg/util/proxy/streamtunnel.go) and the kubelet's SPDY
// port-forward in one process. The WebSocket is a byte pipe: each SPDY write is one
// binary message (--tunnel-cut cuts it further), reads join messages at any boundary.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// serveTunnel strips the "SPDY/3.1+" prefix from the offered subprotocols, negotiates
// the SPDY protocol as the kubelet would, and answers with the prefixed name.
func serveTunnel(w http.ResponseWriter, r *http.Request, cfg *serverConfig, pod string) {
	var spdyProtocols []string
	for _, protocol := range websocket.Subprotocols(r) {
		if strings.HasPrefix(protocol, tunnelPrefix) && strings.HasSuffix(protocol, k8sSuffix) {
			spdyProtocols = append(spdyProtocols, strings.TrimPrefix(protocol, tunnelPrefix))
		}
	}
	if len(spdyProtocols) == 0 {
		http.Error(w, "unable to upgrade: no tunneling spdy protocols provided", http.StatusBadRequest)
		return
	}
	chosen := ""
	for _, protocol := range spdyProtocols {
		if protocol == portForwardProtocol {
			chosen = protocol
			break
		}
	}
	if chosen == "" {
		// The kubelet's Handshake refuses; the API server replays its response.
		w.Header().Add("X-Accepted-Stream-Protocol-Versions", portForwardProtocol)
		http.Error(w, fmt.Sprintf("unable to upgrade: unable to negotiate protocol: client supports %v, server accepts %v",
			spdyProtocols, []string{portForwardProtocol}), http.StatusForbidden)
		return
	}
	upgrader := websocket.Upgrader{
		CheckOrigin:  func(*http.Request) bool { return true },
		Subprotocols: []string{tunnelPrefix + chosen},
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		logf("portforward tunnel: upgrade: %v", err) // gorilla already answered
		return
	}
	conn := newTunnelConn(ws, cfg.tunnelCut)
	defer conn.closeNow()
	runPortForwardSession(conn, cfg, pod)
}

// tunnelConn is client-go's TunnelingConnection, server side, as a net.Conn.
type tunnelConn struct {
	ws        *websocket.Conn
	cut       int
	reader    io.Reader
	writeMu   sync.Mutex
	closeOnce sync.Once
}

func newTunnelConn(ws *websocket.Conn, cut int) *tunnelConn {
	return &tunnelConn{ws: ws, cut: cut}
}

// Read joins binary messages; a text message is an error, close 1000 is EOF.
func (c *tunnelConn) Read(p []byte) (int, error) {
	for {
		if c.reader == nil {
			messageType, reader, err := c.ws.NextReader()
			if err != nil {
				var closeErr *websocket.CloseError
				if errors.As(err, &closeErr) && closeErr.Code == websocket.CloseNormalClosure {
					return 0, io.EOF
				}
				return 0, err
			}
			if messageType != websocket.BinaryMessage {
				return 0, fmt.Errorf("invalid message type received")
			}
			c.reader = reader
		}
		n, err := c.reader.Read(p)
		if n == 0 && err == io.EOF {
			c.reader = nil
			continue
		}
		if err == io.EOF {
			err = nil // the message ended, not the connection
			c.reader = nil
		}
		return n, err
	}
}

// Write sends p as one binary message, or as messages of at most cut bytes.
func (c *tunnelConn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	written := 0
	for written < len(p) || len(p) == 0 {
		end := len(p)
		if c.cut > 0 && end-written > c.cut {
			end = written + c.cut
		}
		if err := c.ws.WriteMessage(websocket.BinaryMessage, p[written:end]); err != nil {
			return written, err
		}
		written = end
		if len(p) == 0 {
			break
		}
	}
	return written, nil
}

// Close sends close 1000 (1 s deadline, as TunnelingConnection.Close), then a FIN, and
// bounds further reads; closeNow releases the socket once the session is done.
func (c *tunnelConn) Close() error {
	c.closeOnce.Do(func() {
		message := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = c.ws.WriteControl(websocket.CloseMessage, message, time.Now().Add(time.Second))
		raw := c.ws.UnderlyingConn()
		if tcp, ok := raw.(interface{ CloseWrite() error }); ok {
			_ = tcp.CloseWrite()
		}
		_ = raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	})
	return nil
}

func (c *tunnelConn) closeNow() {
	_ = c.Close()
	_ = c.ws.UnderlyingConn().Close()
}

func (c *tunnelConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *tunnelConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *tunnelConn) SetDeadline(t time.Time) error      { return c.ws.UnderlyingConn().SetDeadline(t) }
func (c *tunnelConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *tunnelConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
