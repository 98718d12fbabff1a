package client

import "bytes"

// ChainPosition returns the last record of the group whose chain this client
// has verified (seq 0 and a nil hash when it has verified none), so a client
// that stops can persist it and resume checking the chain where it left off
// instead of trusting the first record it sees after a restart.
func (c *Client) ChainPosition(groupID []byte) (seq uint64, hash []byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pos, ok := c.chains[string(groupID)]
	return pos.seq, bytes.Clone(pos.hash), ok
}

// SetChainPosition makes the client continue the verified chain of the group
// from record seq whose chain value is hash (as returned by ChainPosition in
// an earlier run). Records at or before seq are then reported as old by
// Verify, and the next one must continue hash.
func (c *Client) SetChainPosition(groupID []byte, seq uint64, hash []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.chains[string(groupID)] = chainPos{seq: seq, hash: bytes.Clone(hash)}
}
