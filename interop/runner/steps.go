package runner

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	pb "github.com/mlskit/mlskit/interop/mlsclient"
)

// step performs one script step.
func (x *execution) step(ctx context.Context, st Step) error {
	switch p := st.params.(type) {
	case *createGroupStep:
		return x.createGroup(ctx, st.Actor, p)
	case *createKeyPackageStep:
		_, kp, err := x.createKeyPackage(ctx, st.Actor)
		if err == nil {
			x.put("key_package", kp)
		}
		return err
	case *joinGroupStep:
		return x.joinGroup(ctx, st.Actor, p)
	case *externalJoinStep:
		return x.externalJoin(ctx, st.Actor, p)
	case *installExternalPSKStep:
		return x.installExternalPSK(ctx, p)
	case *groupInfoStep:
		resp, err := x.groupInfo(ctx, st.Actor, p.ExternalTree)
		if err == nil {
			x.put("group_info", resp.GetGroupInfo())
			x.put("ratchet_tree", resp.GetRatchetTree())
		}
		return err
	case *addProposalStep:
		kp, err := x.get(p.KeyPackage, "key_package")
		if err != nil {
			return err
		}
		return x.proposal(ctx, st.Actor, "AddProposal", func(ctx context.Context, c pb.MLSClientClient, sid uint32) (*pb.ProposalResponse, error) {
			return c.AddProposal(ctx, &pb.AddProposalRequest{StateId: sid, KeyPackage: kp})
		})
	case *updateProposalStep:
		return x.proposal(ctx, st.Actor, "UpdateProposal", func(ctx context.Context, c pb.MLSClientClient, sid uint32) (*pb.ProposalResponse, error) {
			return c.UpdateProposal(ctx, &pb.UpdateProposalRequest{StateId: sid})
		})
	case *removeProposalStep:
		return x.proposal(ctx, st.Actor, "RemoveProposal", func(ctx context.Context, c pb.MLSClientClient, sid uint32) (*pb.ProposalResponse, error) {
			return c.RemoveProposal(ctx, &pb.RemoveProposalRequest{StateId: sid, RemovedId: []byte(p.Removed)})
		})
	case *externalPSKProposalStep:
		id, err := x.get(p.PSKID, "psk_id")
		if err != nil {
			return err
		}
		return x.proposal(ctx, st.Actor, "ExternalPSKProposal", func(ctx context.Context, c pb.MLSClientClient, sid uint32) (*pb.ProposalResponse, error) {
			return c.ExternalPSKProposal(ctx, &pb.ExternalPSKProposalRequest{StateId: sid, PskId: id})
		})
	case *resumptionPSKProposalStep:
		return x.proposal(ctx, st.Actor, "ResumptionPSKProposal", func(ctx context.Context, c pb.MLSClientClient, sid uint32) (*pb.ProposalResponse, error) {
			return c.ResumptionPSKProposal(ctx, &pb.ResumptionPSKProposalRequest{StateId: sid, EpochId: p.EpochID})
		})
	case *groupContextExtensionsProposalStep:
		exts := protoExtensions(p.Extensions)
		return x.proposal(ctx, st.Actor, "GroupContextExtensionsProposal", func(ctx context.Context, c pb.MLSClientClient, sid uint32) (*pb.ProposalResponse, error) {
			return c.GroupContextExtensionsProposal(ctx, &pb.GroupContextExtensionsProposalRequest{StateId: sid, Extensions: exts})
		})
	case *fullCommitStep:
		return x.fullCommit(ctx, st.Actor, p)
	case *commitStep:
		return x.commit(ctx, st.Actor, p)
	case *handleCommitStep:
		return x.handleCommitStep(ctx, st.Actor, p)
	case *handlePendingCommitStep:
		ea, err := x.handlePending(ctx, st.Actor)
		if err != nil {
			return err
		}
		if i, ok := x.pending[st.Actor]; ok {
			delete(x.pending, st.Actor)
			return x.agreeAt(i, st.Actor, ea)
		}
		return x.setEA(st.Actor, ea)
	case *protectStep:
		return x.protect(ctx, st.Actor, p)
	case *unprotectStep:
		return x.unprotect(ctx, st.Actor, p)
	case *reinitStep:
		return x.reinit(ctx, p)
	case *branchStep:
		return x.branch(ctx, st.Actor, p)
	case *newMemberAddProposalStep:
		return x.newMemberAddProposal(ctx, st.Actor, p)
	case *addExternalSignerStep:
		return x.addExternalSigner(ctx, st.Actor, p)
	case *externalSignerProposalStep:
		return x.externalSignerProposal(ctx, st.Actor, p)
	}
	return fmt.Errorf("no implementation for action %q", st.Action)
}

// createGroup: CreateGroup; a KeyPackage from each member; a Commit adding
// them by value; HandlePendingCommit; JoinGroup at each member, which must
// reach the creator's epoch authenticator.
func (x *execution) createGroup(ctx context.Context, actor string, p *createGroupStep) error {
	gid, err := x.newGroupID()
	if err != nil {
		return err
	}
	req := &pb.CreateGroupRequest{GroupId: gid, CipherSuite: uint32(x.suite), EncryptHandshake: x.run.EncryptHandshake, Identity: []byte(actor)}
	var resp *pb.CreateGroupResponse
	err = x.call(ctx, actor, "CreateGroup", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.CreateGroup(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	delete(x.lastEA, actor)
	x.setState(actor, resp.GetStateId())
	x.put("group_id", gid)
	if len(p.Members) == 0 {
		return nil
	}

	var byValue []*pb.ProposalDescription
	for _, m := range p.Members {
		_, kp, err := x.createKeyPackage(ctx, m)
		if err != nil {
			return err
		}
		byValue = append(byValue, &pb.ProposalDescription{ProposalType: []byte("add"), KeyPackage: kp})
	}
	creq := &pb.CommitRequest{StateId: x.state[actor], ByValue: byValue}
	var cresp *pb.CommitResponse
	err = x.call(ctx, actor, "Commit", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		cresp, err = c.Commit(ctx, creq)
		return err
	})
	if err != nil {
		return err
	}
	if err := checkCommitResponse(cresp, false, true); err != nil {
		return err
	}
	ea, err := x.handlePending(ctx, actor)
	if err != nil {
		return err
	}
	if err := x.setEA(actor, ea); err != nil {
		return err
	}
	for _, m := range p.Members {
		got, err := x.join(ctx, m, cresp.GetWelcome(), nil)
		if err != nil {
			return err
		}
		if err := x.agree(m, got, ea, actor); err != nil {
			return err
		}
	}
	return nil
}

// joinGroup joins with the welcome (and tree, if any) of an earlier step.
func (x *execution) joinGroup(ctx context.Context, actor string, p *joinGroupStep) error {
	w, err := x.get(p.Welcome, "welcome")
	if err != nil {
		return err
	}
	if len(w) == 0 {
		return fmt.Errorf("step %d made no welcome", p.Welcome)
	}
	ea, err := x.join(ctx, actor, w, x.msgs[p.Welcome]["ratchet_tree"])
	if err != nil {
		return err
	}
	return x.agreeAt(p.Welcome, actor, ea)
}

// externalJoin: GroupInfo from the actor; ExternalJoin at the joiner; the
// actor and members process the commit and must reach the joiner's epoch
// authenticator.
func (x *execution) externalJoin(ctx context.Context, actor string, p *externalJoinStep) error {
	gi, err := x.groupInfo(ctx, actor, p.ExternalTree)
	if err != nil {
		return err
	}
	x.put("group_info", gi.GetGroupInfo())
	x.put("ratchet_tree", gi.GetRatchetTree())

	req := &pb.ExternalJoinRequest{
		GroupInfo: gi.GetGroupInfo(), RatchetTree: gi.GetRatchetTree(), EncryptHandshake: x.run.EncryptHandshake,
		Identity: []byte(p.Joiner), RemovePrior: p.RemovePrior,
	}
	for _, i := range p.PSKs {
		id, err := x.get(i, "psk_id")
		if err != nil {
			return err
		}
		secret, err := x.get(i, "psk_secret")
		if err != nil {
			return err
		}
		req.Psks = append(req.Psks, &pb.PreSharedKey{PskId: id, PskSecret: secret})
	}
	var resp *pb.ExternalJoinResponse
	err = x.call(ctx, p.Joiner, "ExternalJoin", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.ExternalJoin(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	if len(resp.GetCommit()) == 0 {
		return fmt.Errorf("%w: %s returned an empty external commit", ErrDisagree, p.Joiner)
	}
	delete(x.lastEA, p.Joiner)
	x.setState(p.Joiner, resp.GetStateId())
	ea := resp.GetEpochAuthenticator()
	if err := x.setEA(p.Joiner, ea); err != nil {
		return err
	}
	x.put("commit", resp.GetCommit())
	x.put("epoch_authenticator", ea)

	for _, m := range append([]string{actor}, p.Members...) {
		got, err := x.handleCommit(ctx, m, nil, resp.GetCommit())
		if err != nil {
			return err
		}
		if err := x.agree(m, got, ea, p.Joiner); err != nil {
			return err
		}
	}
	return nil
}

// installExternalPSK stores a fresh random PSK at each client, on its state
// or else on its pending transaction.
func (x *execution) installExternalPSK(ctx context.Context, p *installExternalPSKStep) error {
	id, err := x.random(32)
	if err != nil {
		return err
	}
	secret, err := x.random(32)
	if err != nil {
		return err
	}
	x.put("psk_id", id)
	x.put("psk_secret", secret)
	for _, a := range p.Clients {
		target, ok := x.state[a]
		if !ok {
			if target, ok = x.tx[a]; !ok {
				return fmt.Errorf("%s has neither a group state nor a pending key package to store a PSK on", a)
			}
		}
		err := x.call(ctx, a, "StorePSK", func(ctx context.Context, c pb.MLSClientClient) error {
			_, err := c.StorePSK(ctx, &pb.StorePSKRequest{StateOrTransactionId: target, PskId: id, PskSecret: secret})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// fullCommit: Commit; HandlePendingCommit at the committer; HandleCommit at
// each member with the by-reference proposals; JoinGroup at each joiner.
// Everyone must reach the committer's epoch authenticator.
func (x *execution) fullCommit(ctx context.Context, actor string, p *fullCommitStep) error {
	req, err := x.commitRequest(actor, p.ByReference, p.ByValue, p.commitFlags)
	if err != nil {
		return err
	}
	var resp *pb.CommitResponse
	err = x.call(ctx, actor, "Commit", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.Commit(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	if err := checkCommitResponse(resp, p.externalTree(), len(p.Joiners) > 0); err != nil {
		return err
	}
	x.put("commit", resp.GetCommit())
	x.put("welcome", resp.GetWelcome())
	if p.externalTree() {
		x.put("ratchet_tree", resp.GetRatchetTree())
	}

	ea, err := x.handlePending(ctx, actor)
	if err != nil {
		return err
	}
	if err := x.setEA(actor, ea); err != nil {
		return err
	}
	x.put("epoch_authenticator", ea)

	for _, m := range p.Members {
		got, err := x.handleCommit(ctx, m, req.GetByReference(), resp.GetCommit())
		if err != nil {
			return err
		}
		if err := x.agree(m, got, ea, actor); err != nil {
			return err
		}
	}
	var tree []byte
	if p.externalTree() {
		tree = resp.GetRatchetTree()
	}
	for _, j := range p.Joiners {
		got, err := x.join(ctx, j, resp.GetWelcome(), tree)
		if err != nil {
			return err
		}
		if err := x.agree(j, got, ea, actor); err != nil {
			return err
		}
	}
	return nil
}

// commit: Commit only; the actor's next handlePendingCommit applies it.
func (x *execution) commit(ctx context.Context, actor string, p *commitStep) error {
	req, err := x.commitRequest(actor, p.ByReference, p.ByValue, p.commitFlags)
	if err != nil {
		return err
	}
	var resp *pb.CommitResponse
	err = x.call(ctx, actor, "Commit", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.Commit(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	if err := checkCommitResponse(resp, p.externalTree(), false); err != nil {
		return err
	}
	x.put("commit", resp.GetCommit())
	x.put("welcome", resp.GetWelcome())
	if p.externalTree() {
		x.put("ratchet_tree", resp.GetRatchetTree())
	}
	x.pending[actor] = x.index
	return nil
}

// handleCommitStep processes an earlier commit step's commit.
func (x *execution) handleCommitStep(ctx context.Context, actor string, p *handleCommitStep) error {
	commit, err := x.get(p.Commit, "commit")
	if err != nil {
		return err
	}
	props, err := x.proposals(p.ByReference)
	if err != nil {
		return err
	}
	ea, err := x.handleCommit(ctx, actor, props, commit)
	if err != nil {
		return err
	}
	return x.agreeAt(p.Commit, actor, ea)
}

func (x *execution) protect(ctx context.Context, actor string, p *protectStep) error {
	sid, err := x.stateOf(actor)
	if err != nil {
		return err
	}
	aad, pt := []byte(p.AuthenticatedData), []byte(p.Plaintext)
	var resp *pb.ProtectResponse
	err = x.call(ctx, actor, "Protect", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.Protect(ctx, &pb.ProtectRequest{StateId: sid, AuthenticatedData: aad, Plaintext: pt})
		return err
	})
	if err != nil {
		return err
	}
	if len(resp.GetCiphertext()) == 0 {
		return fmt.Errorf("%w: %s returned an empty ciphertext", ErrDisagree, actor)
	}
	x.put("authenticatedData", aad)
	x.put("plaintext", pt)
	x.put("ciphertext", resp.GetCiphertext())
	return nil
}

func (x *execution) unprotect(ctx context.Context, actor string, p *unprotectStep) error {
	sid, err := x.stateOf(actor)
	if err != nil {
		return err
	}
	ct, err := x.get(p.Ciphertext, "ciphertext")
	if err != nil {
		return err
	}
	var resp *pb.UnprotectResponse
	err = x.call(ctx, actor, "Unprotect", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.Unprotect(ctx, &pb.UnprotectRequest{StateId: sid, Ciphertext: ct})
		return err
	})
	if err != nil {
		return err
	}
	aad, _ := x.get(p.Ciphertext, "authenticatedData")
	pt, _ := x.get(p.Ciphertext, "plaintext")
	if !bytes.Equal(resp.GetAuthenticatedData(), aad) {
		return fmt.Errorf("%w: %s decrypted authenticated data %q, want %q", ErrDisagree, actor, resp.GetAuthenticatedData(), aad)
	}
	if !bytes.Equal(resp.GetPlaintext(), pt) {
		return fmt.Errorf("%w: %s decrypted plaintext %q, want %q", ErrDisagree, actor, resp.GetPlaintext(), pt)
	}
	x.put("authenticatedData", aad)
	x.put("plaintext", pt)
	return nil
}

// reinit: ReInitProposal (or an earlier external one); ReInitCommit and
// HandlePendingReInitCommit at the committer; HandleReInitCommit at everyone
// else; ReInitWelcome at the welcomer with everyone else's new KeyPackages;
// HandleReInitWelcome at everyone else. Both epoch authenticators (old
// group's last, new group's first) must agree.
func (x *execution) reinit(ctx context.Context, p *reinitStep) error {
	// Everyone but the committer, and everyone but the welcomer, in a fixed
	// order: welcomer/committer first, then proposer, then members.
	var all []string
	for _, a := range append([]string{p.Welcomer, p.Committer, p.Proposer}, p.Members...) {
		if a != "" && !slices.Contains(all, a) {
			all = append(all, a)
		}
	}
	groupID, err := x.reinitGroupID(p.ChangeGroupID)
	if err != nil {
		return err
	}
	if p.ChangeCipherSuite {
		if err := x.changeSuite(); err != nil {
			return err
		}
	}

	var proposal []byte
	if p.Proposer != "" {
		sid, err := x.stateOf(p.Proposer)
		if err != nil {
			return err
		}
		req := &pb.ReInitProposalRequest{StateId: sid, CipherSuite: uint32(x.suite), GroupId: groupID, Extensions: protoExtensions(p.Extensions)}
		err = x.call(ctx, p.Proposer, "ReInitProposal", func(ctx context.Context, c pb.MLSClientClient) error {
			resp, err := c.ReInitProposal(ctx, req)
			proposal = resp.GetProposal()
			return err
		})
		if err != nil {
			return err
		}
		if len(proposal) == 0 {
			return fmt.Errorf("%w: %s returned an empty proposal", ErrDisagree, p.Proposer)
		}
	} else if proposal, err = x.get(p.ExternalReinitProposal, "proposal"); err != nil {
		return err
	}

	// The committer commits the ReInit by reference and applies it.
	sid, err := x.stateOf(p.Committer)
	if err != nil {
		return err
	}
	creq := &pb.CommitRequest{StateId: sid, ByReference: [][]byte{proposal}}
	var cresp *pb.CommitResponse
	err = x.call(ctx, p.Committer, "ReInitCommit", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		cresp, err = c.ReInitCommit(ctx, creq)
		return err
	})
	if err != nil {
		return err
	}
	if err := checkCommitResponse(cresp, false, false); err != nil {
		return err
	}
	reinitID := map[string]uint32{}
	keyPackage := map[string][]byte{}
	var ea []byte
	err = x.call(ctx, p.Committer, "HandlePendingReInitCommit", func(ctx context.Context, c pb.MLSClientClient) error {
		resp, err := c.HandlePendingReInitCommit(ctx, &pb.HandlePendingCommitRequest{StateId: sid})
		reinitID[p.Committer], keyPackage[p.Committer], ea = resp.GetReinitId(), resp.GetKeyPackage(), resp.GetEpochAuthenticator()
		return err
	})
	if err != nil {
		return err
	}
	x.extra = append(x.extra, held{p.Committer, reinitID[p.Committer]})
	if err := x.setEA(p.Committer, ea); err != nil {
		return err
	}

	for _, m := range all {
		if m == p.Committer {
			continue
		}
		msid, err := x.stateOf(m)
		if err != nil {
			return err
		}
		var got []byte
		err = x.call(ctx, m, "HandleReInitCommit", func(ctx context.Context, c pb.MLSClientClient) error {
			resp, err := c.HandleReInitCommit(ctx, &pb.HandleCommitRequest{StateId: msid, Proposal: [][]byte{proposal}, Commit: cresp.GetCommit()})
			reinitID[m], keyPackage[m], got = resp.GetReinitId(), resp.GetKeyPackage(), resp.GetEpochAuthenticator()
			return err
		})
		if err != nil {
			return err
		}
		x.extra = append(x.extra, held{m, reinitID[m]})
		if err := x.agree(m, got, ea, p.Committer); err != nil {
			return err
		}
	}

	// The welcomer creates the new group.
	var kps [][]byte
	for _, m := range all {
		if m != p.Welcomer {
			if len(keyPackage[m]) == 0 {
				return fmt.Errorf("%w: %s returned no key package for the new group", ErrDisagree, m)
			}
			kps = append(kps, keyPackage[m])
		}
	}
	wreq := &pb.ReInitWelcomeRequest{ReinitId: reinitID[p.Welcomer], KeyPackage: kps, ForcePath: p.forcePath(), ExternalTree: p.externalTree()}
	var wresp *pb.CreateSubgroupResponse
	err = x.call(ctx, p.Welcomer, "ReInitWelcome", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		wresp, err = c.ReInitWelcome(ctx, wreq)
		return err
	})
	if err != nil {
		return err
	}
	if err := checkSubgroup(wresp, p.externalTree()); err != nil {
		return err
	}
	x.setState(p.Welcomer, wresp.GetStateId())
	newEA := wresp.GetEpochAuthenticator()
	if err := x.setEA(p.Welcomer, newEA); err != nil {
		return err
	}
	var tree []byte
	if p.externalTree() {
		tree = wresp.GetRatchetTree()
	}
	for _, m := range all {
		if m == p.Welcomer {
			continue
		}
		var resp *pb.JoinGroupResponse
		err := x.call(ctx, m, "HandleReInitWelcome", func(ctx context.Context, c pb.MLSClientClient) (err error) {
			resp, err = c.HandleReInitWelcome(ctx, &pb.HandleReInitWelcomeRequest{ReinitId: reinitID[m], Welcome: wresp.GetWelcome(), RatchetTree: tree})
			return err
		})
		if err != nil {
			return err
		}
		x.setState(m, resp.GetStateId())
		if err := x.agree(m, resp.GetEpochAuthenticator(), newEA, p.Welcomer); err != nil {
			return err
		}
	}
	return nil
}

// checkSubgroup checks a CreateSubgroupResponse: a welcome, and a ratchet
// tree exactly when an external tree was asked for.
func checkSubgroup(resp *pb.CreateSubgroupResponse, externalTree bool) error {
	switch {
	case len(resp.GetWelcome()) == 0:
		return fmt.Errorf("%w: empty welcome", ErrDisagree)
	case externalTree && len(resp.GetRatchetTree()) == 0:
		return fmt.Errorf("%w: external tree asked for but none returned", ErrDisagree)
	case !externalTree && len(resp.GetRatchetTree()) != 0:
		return fmt.Errorf("%w: a ratchet tree was returned though no external tree was asked for", ErrDisagree)
	}
	return nil
}

// branch: a fresh KeyPackage from each member; CreateBranch at the actor;
// HandleBranch at each member, which must reach the actor's epoch
// authenticator. The old states are then freed, as in the working group's
// runner.
func (x *execution) branch(ctx context.Context, actor string, p *branchStep) error {
	var kps [][]byte
	txs := map[string]uint32{}
	for _, m := range p.Members {
		tx, kp, err := x.createKeyPackage(ctx, m)
		if err != nil {
			return err
		}
		txs[m] = tx
		kps = append(kps, kp)
	}
	gid, err := x.newGroupID()
	if err != nil {
		return err
	}
	sid, err := x.stateOf(actor)
	if err != nil {
		return err
	}
	req := &pb.CreateBranchRequest{StateId: sid, GroupId: gid, Extensions: protoExtensions(p.Extensions), KeyPackages: kps,
		ForcePath: p.forcePath(), ExternalTree: p.externalTree()}
	var resp *pb.CreateSubgroupResponse
	err = x.call(ctx, actor, "CreateBranch", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.CreateBranch(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	if err := checkSubgroup(resp, p.externalTree()); err != nil {
		return err
	}
	var tree []byte
	if p.externalTree() {
		tree = resp.GetRatchetTree()
	}
	x.setState(actor, resp.GetStateId())
	ea := resp.GetEpochAuthenticator()
	if err := x.setEA(actor, ea); err != nil {
		return err
	}
	old := map[string]uint32{}
	for _, m := range p.Members {
		msid, err := x.stateOf(m)
		if err != nil {
			return err
		}
		var hresp *pb.HandleBranchResponse
		err = x.call(ctx, m, "HandleBranch", func(ctx context.Context, c pb.MLSClientClient) (err error) {
			hresp, err = c.HandleBranch(ctx, &pb.HandleBranchRequest{StateId: msid, TransactionId: txs[m], Welcome: resp.GetWelcome(), RatchetTree: tree})
			return err
		})
		if err != nil {
			return err
		}
		delete(x.tx, m) // used up
		old[m] = msid
		x.state[m] = hresp.GetStateId()
		if err := x.agree(m, hresp.GetEpochAuthenticator(), ea, actor); err != nil {
			return err
		}
	}
	for _, m := range p.Members {
		err := x.call(ctx, m, "Free", func(ctx context.Context, c pb.MLSClientClient) error {
			_, err := c.Free(ctx, &pb.FreeRequest{StateId: old[m]})
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// newMemberAddProposal: GroupInfo from the actor; NewMemberAddProposal at
// the joiner, whose transaction then waits for the welcome.
func (x *execution) newMemberAddProposal(ctx context.Context, actor string, p *newMemberAddProposalStep) error {
	gi, err := x.groupInfo(ctx, actor, false)
	if err != nil {
		return err
	}
	var resp *pb.NewMemberAddProposalResponse
	err = x.call(ctx, p.Joiner, "NewMemberAddProposal", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.NewMemberAddProposal(ctx, &pb.NewMemberAddProposalRequest{GroupInfo: gi.GetGroupInfo(), Identity: []byte(p.Joiner)})
		return err
	})
	if err != nil {
		return err
	}
	if len(resp.GetProposal()) == 0 {
		return fmt.Errorf("%w: %s returned an empty proposal", ErrDisagree, p.Joiner)
	}
	x.setTx(p.Joiner, resp.GetTransactionId())
	x.put("proposal", resp.GetProposal())
	return nil
}

// addExternalSigner: CreateExternalSigner at the signer; AddExternalSigner
// at the actor, whose proposal a later commit includes.
func (x *execution) addExternalSigner(ctx context.Context, actor string, p *addExternalSignerStep) error {
	var sresp *pb.CreateExternalSignerResponse
	err := x.call(ctx, p.Signer, "CreateExternalSigner", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		sresp, err = c.CreateExternalSigner(ctx, &pb.CreateExternalSignerRequest{CipherSuite: uint32(x.suite), Identity: []byte(p.Signer)})
		return err
	})
	if err != nil {
		return err
	}
	if old, ok := x.signer[p.Signer]; ok {
		x.extra = append(x.extra, held{p.Signer, old})
	}
	x.signer[p.Signer] = sresp.GetSignerId()
	if _, ok := x.signerIndex[p.Signer]; !ok {
		x.signerIndex[p.Signer] = uint32(len(x.signerIndex))
	}
	return x.proposal(ctx, actor, "AddExternalSigner", func(ctx context.Context, c pb.MLSClientClient, sid uint32) (*pb.ProposalResponse, error) {
		return c.AddExternalSigner(ctx, &pb.AddExternalSignerRequest{StateId: sid, ExternalSender: sresp.GetExternalSender()})
	})
}

// externalSignerProposal: GroupInfo (with the tree apart) from the member;
// ExternalSignerProposal at the signer. The signer's index in
// external_senders is the order in which the script added signers; the
// working group's runner always sends 0, which is the same for every
// script it ships (only the first signer ever proposes).
func (x *execution) externalSignerProposal(ctx context.Context, actor string, p *externalSignerProposalStep) error {
	signerID, ok := x.signer[actor]
	if !ok {
		return fmt.Errorf("%s is not an external signer (no earlier addExternalSigner)", actor)
	}
	gi, err := x.groupInfo(ctx, p.Member, true)
	if err != nil {
		return err
	}
	d, err := x.describe(p.Description)
	if err != nil {
		return err
	}
	req := &pb.ExternalSignerProposalRequest{SignerId: signerID, SignerIndex: x.signerIndex[actor], GroupInfo: gi.GetGroupInfo(), RatchetTree: gi.GetRatchetTree(), Description: d}
	var resp *pb.ProposalResponse
	err = x.call(ctx, actor, "ExternalSignerProposal", func(ctx context.Context, c pb.MLSClientClient) (err error) {
		resp, err = c.ExternalSignerProposal(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	if len(resp.GetProposal()) == 0 {
		return fmt.Errorf("%w: %s returned an empty proposal", ErrDisagree, actor)
	}
	x.put("proposal", resp.GetProposal())
	return nil
}
