package main

import (
	"flag"

	"github.com/mlskit/mlskit/ds/server"
)

// limitFlags binds a flag to every limit of server.Config. Defaults are
// server.Config's (docs/mlsd.md, "Limits"); 0 keeps the default, a
// negative rate disables that limit.
func limitFlags(fs *flag.FlagSet, c *server.Config) {
	d := server.DefaultConfig()
	*c = d
	fs.Float64Var(&c.ClientRate, "client-rate", d.ClientRate, "requests per second per client (token bucket)")
	fs.Float64Var(&c.ClientBurst, "client-burst", d.ClientBurst, "burst of -client-rate")
	fs.Float64Var(&c.GroupRate, "group-rate", d.GroupRate, "messages per second per group")
	fs.Float64Var(&c.GroupBurst, "group-burst", d.GroupBurst, "burst of -group-rate")
	fs.Float64Var(&c.ClaimRate, "claim-rate", d.ClaimRate, "KeyPackages claimed per second per claimer")
	fs.Float64Var(&c.ClaimBurst, "claim-burst", d.ClaimBurst, "burst of -claim-rate")
	fs.Float64Var(&c.TargetRate, "target-rate", d.TargetRate, "KeyPackages claimed per second per target client, all claimers")
	fs.Float64Var(&c.TargetBurst, "target-burst", d.TargetBurst, "burst of -target-rate")
	fs.Float64Var(&c.PairRate, "pair-rate", d.PairRate, "KeyPackages one claimer may claim of one target per second (beyond: the last resort)")
	fs.Float64Var(&c.PairBurst, "pair-burst", d.PairBurst, "burst of -pair-rate")
	fs.Float64Var(&c.LoginRate, "login-rate", d.LoginRate, "login challenges per second per client address")
	fs.Float64Var(&c.LoginBurst, "login-burst", d.LoginBurst, "burst of -login-rate")
	fs.Float64Var(&c.AccountByteRate, "account-byte-rate", d.AccountByteRate, "bytes per second an account may send (quota)")
	fs.Float64Var(&c.AccountByteBurst, "account-byte-burst", d.AccountByteBurst, "burst of -account-byte-rate, bytes")
	fs.Float64Var(&c.GroupByteRate, "group-byte-rate", d.GroupByteRate, "bytes per second a group may receive (quota)")
	fs.Float64Var(&c.GroupByteBurst, "group-byte-burst", d.GroupByteBurst, "burst of -group-byte-rate, bytes")
	fs.Int64Var(&c.MaxAccountStoredBytes, "max-account-stored", d.MaxAccountStoredBytes, "bytes an account may keep stored")
	fs.Int64Var(&c.MaxGroupStoredBytes, "max-group-stored", d.MaxGroupStoredBytes, "bytes a group may keep stored")
	fs.IntVar(&c.MaxKeyPackagesPerClient, "max-keypackages", d.MaxKeyPackagesPerClient, "KeyPackages a client may keep stored")
	fs.IntVar(&c.MaxSmallRequest, "max-small-request", d.MaxSmallRequest, "request bytes for calls without MLS messages (Login, Fetch, ...)")
	fs.DurationVar(&c.RequestReadTimeout, "read-timeout", d.RequestReadTimeout, "time for a request's headers, and again for its body, to arrive")
	fs.DurationVar(&c.ResponseTimeout, "response-timeout", d.ResponseTimeout, "time for a client to take a unary answer")
	fs.IntVar(&c.MaxCallsPerAddr, "max-calls-per-addr", d.MaxCallsPerAddr, "concurrent unary calls per client address")
	fs.IntVar(&c.MaxCalls, "max-calls", d.MaxCalls, "concurrent unary calls in total")
	fs.IntVar(&c.MaxStreamsPerAddr, "max-streams-per-addr", d.MaxStreamsPerAddr, "concurrent streams per client address")
	fs.IntVar(&c.MaxStreams, "max-streams", d.MaxStreams, "concurrent streams in total")
	fs.IntVar(&c.MaxConnsPerAddr, "max-conns-per-addr", d.MaxConnsPerAddr, "open TCP connections per client address (negative: no cap)")
	fs.Int64Var(&c.MaxInflightBytes, "max-inflight-bytes", d.MaxInflightBytes, "memory request bodies hold at once, all calls (a request counts 3 times its size)")
	fs.DurationVar(&c.BudgetWait, "budget-wait", d.BudgetWait, "how long a request waits for -max-inflight-bytes to free up")
	fs.Int64Var(&c.CacheBytes, "cache-bytes", d.CacheBytes, "recent-records cache size, bytes")
	fs.Int64Var(&c.FollowerCacheBytes, "follower-cache-bytes", d.FollowerCacheBytes, "PublicGroups followed in memory (public-handshake groups), estimated bytes")
	fs.IntVar(&c.QueueDepth, "queue-depth", d.QueueDepth, "records a subscriber may fall behind before it is disconnected")
	fs.DurationVar(&c.SendTimeout, "send-timeout", d.SendTimeout, "a stream write blocked longer ends the stream")
}
