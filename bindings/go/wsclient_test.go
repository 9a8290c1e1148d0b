package quicklane_test

// A small WebSocket client over net.Conn for the tests (the module has no
// dependencies): a handshake, masked frames out, whole frames in.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

type wsClient struct {
	conn   net.Conn
	r      *bufio.Reader
	status int
	header http.Header
	body   string // a refusal's body
}

// dialWS opens a WebSocket to ws://addr+path; extra is "Name: value" header
// lines. A refused upgrade returns a client with its status and body (and
// no error); its conn is closed.
func dialWS(addr, path string, extra ...string) (*wsClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	keyb := make([]byte, 16)
	rand.Read(keyb)
	key := base64.StdEncoding.EncodeToString(keyb)
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n", path, addr, key)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, b.String()); err != nil {
		conn.Close()
		return nil, err
	}
	c := &wsClient{conn: conn, r: bufio.NewReader(conn)}
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.status, c.header = res.StatusCode, res.Header
	if res.StatusCode != 101 {
		body, _ := io.ReadAll(res.Body)
		c.body = string(body)
		conn.Close()
		return c, nil
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if res.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		conn.Close()
		return nil, errors.New("bad Sec-WebSocket-Accept")
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}

func (c *wsClient) writeFrame(opcode byte, payload []byte) error {
	head := []byte{0x80 | opcode}
	n := len(payload)
	switch {
	case n < 126:
		head = append(head, 0x80|byte(n))
	case n < 65536:
		head = append(head, 0x80|126, byte(n>>8), byte(n))
	default:
		head = append(head, 0x80|127)
		head = binary.BigEndian.AppendUint64(head, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	head = append(head, mask[:]...)
	buf := make([]byte, len(head)+n)
	copy(buf, head)
	for i, x := range payload {
		buf[len(head)+i] = x ^ mask[i&3]
	}
	_, err := c.conn.Write(buf)
	return err
}

func (c *wsClient) sendText(s string) error   { return c.writeFrame(1, []byte(s)) }
func (c *wsClient) sendBinary(b []byte) error { return c.writeFrame(2, b) }

// sendClose sends a close frame with code (none when 0) and reason.
func (c *wsClient) sendClose(code int, reason string) error {
	var p []byte
	if code != 0 {
		p = binary.BigEndian.AppendUint16(nil, uint16(code))
		p = append(p, reason...)
	}
	return c.writeFrame(8, p)
}

// readFrame reads one frame (the server never fragments what it sends).
func (c *wsClient) readFrame(timeout time.Duration) (opcode byte, payload []byte, err error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err = io.ReadFull(c.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err = io.ReadFull(c.r, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err = io.ReadFull(c.r, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(c.r, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}

// readMessage reads the next data frame, answering nothing; a close frame
// comes back as an error naming its code.
func (c *wsClient) readMessage() (opcode byte, payload []byte, err error) {
	for {
		op, p, err := c.readFrame(10 * time.Second)
		if err != nil {
			return 0, nil, err
		}
		switch op {
		case 9, 10:
			continue
		case 8:
			code := 1005
			if len(p) >= 2 {
				code = int(binary.BigEndian.Uint16(p))
			}
			return op, p, &closeFrame{code, string(p[min(2, len(p)):])}
		}
		return op, p, nil
	}
}

type closeFrame struct {
	code   int
	reason string
}

func (e *closeFrame) Error() string { return fmt.Sprintf("close frame %d %q", e.code, e.reason) }

// expectClose reads until the server's close frame and returns its code.
func (c *wsClient) expectClose() (int, string, error) {
	for {
		_, _, err := c.readMessage()
		var cf *closeFrame
		if errors.As(err, &cf) {
			return cf.code, cf.reason, nil
		}
		if err != nil {
			return 0, "", err
		}
	}
}

func (c *wsClient) Close() error { return c.conn.Close() }
