/*
 * ordering.pml: a SPIN model of mlsd's commit ordering and of the chat
 * client that loses races, refetches, retries, crashes and recovers.
 * Checked by ds/model/model_test.go; see docs/mlsd.md, "Model-checked
 * ordering".
 *
 * What stands for what (read the model beside these functions):
 *
 *   proctype Server      ds/server.(*Server).SendCommit: the per-group
 *                        lock, epochCache.check (answers a commit for an
 *                        epoch it knows is won from memory), then
 *                        store.Append in one transaction: store.CheckEpoch
 *                        (a commit must name the current epoch),
 *                        store.BuildRecords (seq = head + 1, chained to the
 *                        head), the insert, the epoch advance; then
 *                        epochCache.won/learn and the answer. A crash may
 *                        come between the committed transaction and the
 *                        answer: the client sees a broken connection
 *                        (UNAVAIL), the durable log keeps the record and
 *                        the in-memory epochCache is lost.
 *   log[], logLen,       the records and commits tables and the group's
 *   srvEpoch             head row (ds/store/sqlite, ds/store/postgres):
 *                        durable, survive a server crash.
 *   inline fetch_one     ds/server.(*Server).Fetch plus ds/client Verify
 *                        (store.VerifyChain: seq = cursor + 1, chained).
 *   inline handle        internal/chat.(*Client).process and handle: an own
 *                        commit merges the pending commit if it names the
 *                        group's epoch; another's commit discards the
 *                        pending commit and is processed if it is for the
 *                        client's epoch (else it is an error event and
 *                        skipped); saveGroup, then saveMeta (cursor).
 *   proctype Client      internal/chat commitRetry and sendCommit driven
 *                        by SelfUpdate (sync, then commit, retrying after a
 *                        lost race up to MAXATT times): g.Commit (fails
 *                        with ErrPendingCommit if a pending commit exists),
 *                        saveGroup with the pending commit, SendCommit,
 *                        then merge on success; on a lost race discard and
 *                        sync; on any other error discard and give up.
 *                        A crash at any step loses everything but the
 *                        durable state cEpoch/cPending/cPendId/cCursor
 *                        (the group and meta files); the process restarts
 *                        at the top, with a new connection (gen).
 *
 * The client comes in two versions:
 *
 *   default              the recovery rule the ordering protocol needs: a
 *                        pending commit is dropped only when the log shows
 *                        another commit won its epoch. After an error whose
 *                        outcome is unknown (a broken connection) or a
 *                        crash, the client keeps it and sends the same
 *                        commit again; the server's epoch rule makes the
 *                        resend harmless (it lands, or is stale, and the
 *                        next sync finds out which).
 *   -DCHAT_AS_IS         internal/chat as of this model: sendCommit
 *                        discards the pending commit on every error, and
 *                        a pending commit left by a crash makes every
 *                        later g.Commit fail with ErrPendingCommit. The
 *                        checker rejects it (see docs/mlsd.md).
 *
 * Deliberately broken servers, which the checker must reject:
 *
 *   -DBROKEN_ACCEPT      the accept rule without the epoch check
 *   -DACK_BEFORE_WRITE   the answer is sent before the transaction is
 *                        durable, and a crash between them loses it
 *
 * Properties:
 *   one_commit_per_epoch  assertion at accept: no epoch is won twice
 *   gapless               assertion at every fetch: the record continues
 *                         the client's verified chain (seq = cursor + 1,
 *                         prev = cursor)
 *   acked_kept            invariant (monitor): a commit whose success
 *                         was reported to its sender is in the log, at the
 *                         seq reported, from that sender
 *   merge_own             assertion: a client only merges the commit it
 *                         sent
 *   synced                assertion when a client stops: it is at the
 *                         server's epoch with nothing pending
 *   progress (LTL)        <> (finished == NC): under weak fairness every
 *                         client that keeps running lands its GOAL commits
 *                         and catches up with the log, so none is wedged
 *                         after a crash (of itself or of the server)
 */

#ifndef NC
#define NC 2        /* clients */
#endif
#ifndef GOAL
#define GOAL 1      /* commits each client wants to land */
#endif
#ifndef CCRASH
#define CCRASH 1    /* crashes per client */
#endif
#ifndef SCRASH
#define SCRASH 1    /* server crashes */
#endif
#ifndef MAXATT
#define MAXATT 2    /* commit attempts per operation (chat: maxCommitAttempts) */
#endif
#define MAXLOG (NC*GOAL + 1)
#define IDS 4       /* commit identities per client, reused cyclically */

mtype = { OK, STALE, UNAVAIL };

typedef Rec { byte epoch; byte sender; byte id; byte seq; byte prev };

/* durable server state */
Rec  log[MAXLOG];
byte logLen = 0;          /* head seq */
byte srvEpoch = 0;        /* group epoch */
/* volatile server state */
byte cacheCur = 0;        /* epochCache: epochs below are known won */
byte scrash = SCRASH;
bool busy = false;        /* a request is being handled */

/* durable client state (group and meta files) */
byte cEpoch[NC];
bool cPending[NC];
byte cPendId[NC];
byte cCursor[NC];
/* ghosts */
byte won[MAXLOG];         /* commits accepted per epoch */
byte ackedSeq[NC];        /* last success reported to the client */
byte ackedId[NC];
byte landed[NC];          /* own commits merged */
byte gen[NC];             /* connection generation */
byte finished = 0;
byte goalDone = 0;

chan req = [NC] of { byte, byte, byte, byte };      /* client, epoch, id, gen */
chan rep[NC] = [CCRASH + 2] of { mtype, byte, byte }; /* answer, seq, gen */

ltl progress { <> (finished == NC) }

#define ACKED_OK(c) (ackedSeq[c] == 0 || \
	(ackedSeq[c] <= logLen && log[ackedSeq[c]-1].sender == c && log[ackedSeq[c]-1].id == ackedId[c]))

#if NC > 2
#define ACKED_ALL (ACKED_OK(0) && ACKED_OK(1) && ACKED_OK(2))
#else
#define ACKED_ALL (ACKED_OK(0) && ACKED_OK(1))
#endif

active proctype Monitor() {
	/* acked_kept, checked in every reachable state */
end:	atomic { !ACKED_ALL -> assert(ACKED_ALL) }
}

/* The server's answer to one request; on a crash it answers this and every
 * queued request with UNAVAIL (their connections break) and forgets its
 * cache. */
inline answer(c, a, s, g) {
	if
	:: scrash > 0 ->
		atomic {   /* the crash and restart are one instant */
			scrash--;
			cacheCur = 0;
			rep[c]!UNAVAIL,0,g;
			do
			:: req?qc,qe,qid,qg -> rep[qc]!UNAVAIL,0,qg
			:: empty(req) -> break
			od
		}
	:: true -> rep[c]!a,s,g
	fi
}

active proctype Server() {
	byte c, e, id, g, s;
	byte qc, qe, qid, qg;
	bool ok;
end:	do
	:: atomic { req?c,e,id,g -> busy = true };
		if
		:: e < cacheCur ->
			/* epochCache.check: the winner is known */
			rep[c]!STALE,0,g
		:: else ->
			atomic {
				/* store.Append: CheckEpoch, BuildRecords, insert */
#ifdef BROKEN_ACCEPT
				ok = true;
#else
				ok = (e == srvEpoch);
#endif
				if
				:: ok ->
					assert(won[e] == 0);   /* one_commit_per_epoch */
					won[e]++;
					log[logLen].epoch = e;
					log[logLen].sender = c;
					log[logLen].id = id;
					log[logLen].seq = logLen + 1;
					log[logLen].prev = logLen;
					logLen++;
					s = logLen;
					srvEpoch++;
					cacheCur = srvEpoch    /* epochCache.won */
				:: else ->
					cacheCur = srvEpoch    /* epochCache.learn */
				fi
			}
			if
			:: ok ->
#ifdef ACK_BEFORE_WRITE
				/* the answer leaves first; a crash before the
				 * transaction is durable loses the record */
				rep[c]!OK,s,g;
				if
				:: scrash > 0 ->
					atomic {
						scrash--; cacheCur = 0;
						logLen--; srvEpoch--; won[e]--
					}
				:: true -> skip
				fi
#else
				answer(c, OK, s, g)
#endif
			:: else -> answer(c, STALE, 0, g)
			fi
		fi;
		busy = false
	od
}

/* A crash point: the client process dies and restarts. */
#define CRASH_POINT	if :: crashes > 0 -> crashes--; goto restart :: true -> skip fi

/* Process the next record of the log (fetch, verify, handle, save). */
inline fetch_one(c) {
	atomic {
		/* ds/client Verify: the record continues the verified chain */
		assert(log[cCursor[c]].seq == cCursor[c] + 1 && log[cCursor[c]].prev == cCursor[c]); /* gapless */
		if
		:: log[cCursor[c]].sender == c ->
			if
			:: cPending[c] && log[cCursor[c]].epoch == cEpoch[c] ->
				assert(log[cCursor[c]].id == cPendId[c]);  /* merge_own */
				cEpoch[c]++; cPending[c] = false; landed[c]++
			:: else -> skip   /* applied when sent */
			fi
		:: else ->
			cPending[c] = false;  /* another commit won the epoch */
			if
			:: log[cCursor[c]].epoch == cEpoch[c] -> cEpoch[c]++
			:: else -> skip       /* cannot process: error event */
			fi
		fi
	}
	CRASH_POINT;                      /* between saveGroup and saveMeta */
	cCursor[c]++
}

inline sync(c) {
	do
	:: cCursor[c] < logLen -> fetch_one(c)
	:: else -> break
	od
}

proctype Client(byte c) {
	byte crashes = CCRASH;
	byte att, id, nextId = 1, s, g;
	mtype a;
	bool countedDone = false;
restart:
	gen[c]++;
	do
	:: landed[c] < GOAL ->
		sync(c);
		atomic {
			if
			:: landed[c] >= GOAL -> goto goal   /* a commit found in the log */
			:: else -> att = 0
			fi
		};
		do
		:: att < MAXATT ->
			atomic {
				att++;
				if
				:: cPending[c] ->
#ifdef CHAT_AS_IS
					/* g.Commit fails with ErrPendingCommit, and so
					 * does the operation: until another member's
					 * commit arrives, this client cannot commit */
					break
#else
					id = cPendId[c]   /* send the same commit again */
#endif
				:: else ->
					/* g.Commit, saveGroup with the pending commit */
					id = nextId; nextId = nextId % IDS + 1;
					cPending[c] = true; cPendId[c] = id
				fi
			};
			CRASH_POINT;
			req!c,cEpoch[c],id,gen[c];
			/* wait for the answer of this connection, or crash */
			do
			:: atomic { rep[c]?a,s,g -> if
				:: g == gen[c] -> break
				:: else -> skip
				fi }
			:: crashes > 0 -> crashes--; goto restart
			od;
			if
			:: a == OK ->
				atomic { ackedSeq[c] = s; ackedId[c] = id };
				CRASH_POINT;
				/* MergePendingCommit, saveGroup */
				atomic { cEpoch[c]++; cPending[c] = false; landed[c]++ };
				break
			:: a == STALE ->
#ifdef CHAT_AS_IS
				cPending[c] = false;
#endif
				CRASH_POINT;
				sync(c);
				if
				:: landed[c] >= GOAL -> break
				:: else -> skip
				fi
			:: a == UNAVAIL ->
#ifdef CHAT_AS_IS
				cPending[c] = false;
#endif
				break   /* the operation fails; the user tries again */
			fi
		:: else -> break
		od
	:: else -> break
	od;
goal:
	if
	:: !countedDone -> countedDone = true; goalDone++
	:: else -> skip
	fi;
	/* keep reading until everyone is done and the log is read */
	do
	:: cCursor[c] < logLen -> fetch_one(c)
	:: goalDone == NC && cCursor[c] == logLen && empty(req) && !busy -> break
	od;
	assert(cEpoch[c] == srvEpoch && !cPending[c]);  /* synced */
	finished++
}

init {
	byte i;
	atomic {
		for (i : 0 .. NC-1) {
			run Client(i)
		}
	}
}
