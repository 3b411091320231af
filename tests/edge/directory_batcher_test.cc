// DirectoryBatcher (edge/directory_batcher.h) over a fake transport: the
// in-flight limit, queueing into one batch, deadlines of queued checks,
// failures and the fallback to CheckRecipients on UNIMPLEMENTED.
#include "edge/directory_batcher.h"

#include <gtest/gtest.h>

#include <optional>

namespace doorman::edge {
namespace {

namespace v1 = doorman::v1;

class FakeTransport : public BatchTransport {
 public:
  struct BatchCall {
    v1::CheckBatchRequest request;
    SteadyClock::time_point deadline;
    BatchDone done;
  };
  struct OneCall {
    v1::CheckRecipientsRequest request;
    SteadyClock::time_point deadline;
    OneDone done;
  };
  void check_batch(const v1::CheckBatchRequest& request, SteadyClock::time_point deadline, BatchDone done) override {
    batches.push_back({request, deadline, std::move(done)});
  }
  void check_one(const v1::CheckRecipientsRequest& request, SteadyClock::time_point deadline, OneDone done) override {
    ones.push_back({request, deadline, std::move(done)});
  }
  std::vector<BatchCall> batches;
  std::vector<OneCall> ones;
};

v1::Verdict verdict(v1::Decision d, int code) {
  v1::Verdict v;
  v.set_decision(d);
  v.set_code(static_cast<uint32_t>(code));
  v.set_source(v1::SOURCE_LIST);
  return v;
}

// One verdict per recipient: accept for user*, reject otherwise.
v1::CheckRecipientsResponse answer(const v1::CheckRecipientsRequest& r) {
  v1::CheckRecipientsResponse out;
  for (const auto& rcpt : r.recipients())
    *out.add_verdicts() = rcpt.rfind("user", 0) == 0 ? verdict(v1::DECISION_ACCEPT, 250)
                                                      : verdict(v1::DECISION_REJECT, 550);
  return out;
}

v1::CheckBatchResponse answer(const v1::CheckBatchRequest& b) {
  v1::CheckBatchResponse out;
  for (const auto& c : b.checks()) *out.add_results()->mutable_response() = answer(c);
  return out;
}

v1::CheckRecipientsRequest req(const std::string& session, std::vector<std::string> rcpts) {
  v1::CheckRecipientsRequest r;
  r.mutable_session()->set_session_id(session);
  r.mutable_session()->set_client_ip("192.0.2.1");
  for (auto& x : rcpts) r.add_recipients(x);
  return r;
}

class DirectoryBatcherTest : public ::testing::Test {
 protected:
  // The fake keeps every completion, and a completion holds its batcher,
  // which holds the fake: break that cycle (a real transport drops a
  // completion once it has run).
  void TearDown() override {
    if (!transport_) return;
    transport_->batches.clear();
    transport_->ones.clear();
  }
  std::shared_ptr<DirectoryBatcher> make(size_t in_flight, size_t max_batch = 64) {
    transport_ = std::make_shared<FakeTransport>();
    return DirectoryBatcher::create(transport_, {in_flight, max_batch, std::chrono::milliseconds(25)},
                                    [this] { return now_; });
  }
  // Submits a check whose result lands in results_[session].
  void submit(DirectoryBatcher& b, const std::string& session, std::vector<std::string> rcpts,
              std::chrono::milliseconds budget = std::chrono::milliseconds(1000)) {
    b.submit(req(session, std::move(rcpts)), now_ + budget,
             [this, session](CheckResult r) { results_[session] = std::move(r); });
  }
  void complete_batch(size_t i) {
    auto& call = transport_->batches.at(i);
    call.done(grpc::Status::OK, answer(call.request));
  }
  std::vector<std::string> sessions_of(size_t i) {
    std::vector<std::string> out;
    for (const auto& c : transport_->batches.at(i).request.checks()) out.push_back(c.session().session_id());
    return out;
  }

  std::shared_ptr<FakeTransport> transport_;
  SteadyClock::time_point now_ = SteadyClock::time_point() + std::chrono::hours(1);
  std::map<std::string, CheckResult> results_;
};

TEST_F(DirectoryBatcherTest, ACheckGoesOutAtOnceWhenASlotIsFree) {
  auto b = make(2);
  submit(*b, "s1", {"user1@example.com"});
  ASSERT_EQ(transport_->batches.size(), 1u);
  EXPECT_EQ(sessions_of(0), std::vector<std::string>{"s1"});
  EXPECT_EQ(b->in_flight(), 1u);
  EXPECT_EQ(b->queued(), 0u);
  complete_batch(0);
  ASSERT_TRUE(results_["s1"].ok);
  ASSERT_EQ(results_["s1"].verdicts.size(), 1u);
  EXPECT_EQ(results_["s1"].verdicts[0].decision, Verdict::Decision::kAccept);
  EXPECT_EQ(b->in_flight(), 0u);
}

TEST_F(DirectoryBatcherTest, ChecksQueueBehindTheInFlightLimitAndGoOutTogether) {
  auto b = make(2);
  submit(*b, "s1", {"user1@example.com"});
  submit(*b, "s2", {"nobody2@example.com"});
  submit(*b, "s3", {"user3@example.com", "nobody3@example.com"});
  submit(*b, "s4", {"nobody4@example.com"});
  submit(*b, "s5", {"user5@example.com"});
  ASSERT_EQ(transport_->batches.size(), 2u);  // the limit
  EXPECT_EQ(b->queued(), 3u);
  complete_batch(1);  // any call returning sends the queue, in order, as one batch
  ASSERT_EQ(transport_->batches.size(), 3u);
  EXPECT_EQ(sessions_of(2), (std::vector<std::string>{"s3", "s4", "s5"}));
  EXPECT_EQ(b->in_flight(), 2u);
  ASSERT_TRUE(results_["s2"].ok);
  EXPECT_EQ(results_["s2"].verdicts[0].decision, Verdict::Decision::kReject);
  EXPECT_FALSE(results_.count("s3"));
  complete_batch(2);
  ASSERT_TRUE(results_["s3"].ok);
  ASSERT_EQ(results_["s3"].verdicts.size(), 2u);
  EXPECT_EQ(results_["s3"].verdicts[0].decision, Verdict::Decision::kAccept);
  EXPECT_EQ(results_["s3"].verdicts[1].decision, Verdict::Decision::kReject);
  EXPECT_TRUE(results_["s4"].ok);
  EXPECT_TRUE(results_["s5"].ok);
  complete_batch(0);
  EXPECT_TRUE(results_["s1"].ok);
  EXPECT_EQ(b->in_flight(), 0u);
  EXPECT_EQ(transport_->batches.size(), 3u);  // nothing left to send
}

TEST_F(DirectoryBatcherTest, ASlowCallStopsCountingAgainstTheLimit) {
  auto b = make(1);
  submit(*b, "slow", {"user1@callout.test"});  // e.g. waits for a callout probe
  submit(*b, "queued", {"user2@example.com"});
  EXPECT_EQ(transport_->batches.size(), 1u);
  now_ += std::chrono::milliseconds(30);  // the call in flight is now past stall_after
  submit(*b, "next", {"user3@example.com"});
  ASSERT_EQ(transport_->batches.size(), 2u);  // sent at once, with the one that queued
  EXPECT_EQ(sessions_of(1), (std::vector<std::string>{"queued", "next"}));
  EXPECT_EQ(b->in_flight(), 2u);
  submit(*b, "young", {"user4@example.com"});  // the second call is young: this one queues
  EXPECT_EQ(transport_->batches.size(), 2u);
  EXPECT_EQ(b->queued(), 1u);
  complete_batch(1);  // the young one returns first: the queue goes out
  ASSERT_EQ(transport_->batches.size(), 3u);
  EXPECT_EQ(sessions_of(2), std::vector<std::string>{"young"});
  complete_batch(0);
  complete_batch(2);
  for (const char* s : {"slow", "queued", "next", "young"}) EXPECT_TRUE(results_[s].ok) << s;
  EXPECT_EQ(b->in_flight(), 0u);
}

TEST_F(DirectoryBatcherTest, ABatchHoldsAtMostMaxBatchChecks) {
  auto b = make(1, 2);
  for (int i = 0; i < 6; ++i) submit(*b, "s" + std::to_string(i), {"user@example.com"});
  ASSERT_EQ(transport_->batches.size(), 1u);
  complete_batch(0);
  ASSERT_EQ(transport_->batches.size(), 2u);
  EXPECT_EQ(sessions_of(1), (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(b->queued(), 3u);
}

TEST_F(DirectoryBatcherTest, AQueuedCheckPastItsDeadlineFailsAndIsNotSent) {
  auto b = make(1);
  submit(*b, "s1", {"user1@example.com"}, std::chrono::milliseconds(1000));
  submit(*b, "late", {"user2@example.com"}, std::chrono::milliseconds(100));
  submit(*b, "s3", {"user3@example.com"}, std::chrono::milliseconds(1000));
  now_ += std::chrono::milliseconds(150);
  complete_batch(0);
  ASSERT_TRUE(results_.count("late"));
  EXPECT_FALSE(results_["late"].ok);
  EXPECT_NE(results_["late"].error.find("deadline"), std::string::npos);
  ASSERT_EQ(transport_->batches.size(), 2u);
  EXPECT_EQ(sessions_of(1), std::vector<std::string>{"s3"});
}

TEST_F(DirectoryBatcherTest, ABatchCarriesTheEarliestDeadlineOfItsChecks) {
  auto b = make(1);
  submit(*b, "s1", {"user1@example.com"});
  submit(*b, "s2", {"user2@example.com"}, std::chrono::milliseconds(900));
  submit(*b, "s3", {"user3@example.com"}, std::chrono::milliseconds(300));
  complete_batch(0);
  ASSERT_EQ(transport_->batches.size(), 2u);
  EXPECT_EQ(transport_->batches[1].deadline, now_ + std::chrono::milliseconds(300));
}

TEST_F(DirectoryBatcherTest, AFailedCallFailsEveryCheckOfItsBatch) {
  auto b = make(1);
  submit(*b, "s1", {"user1@example.com"});
  submit(*b, "s2", {"user2@example.com"});
  submit(*b, "s3", {"nobody3@example.com", "user3@example.com"});
  complete_batch(0);
  ASSERT_EQ(transport_->batches.size(), 2u);
  transport_->batches[1].done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"), {});
  for (const char* s : {"s2", "s3"}) {
    ASSERT_TRUE(results_.count(s)) << s;
    EXPECT_FALSE(results_[s].ok) << s;
    EXPECT_NE(results_[s].error.find("connection refused"), std::string::npos) << s;
  }
  EXPECT_EQ(b->in_flight(), 0u);
  EXPECT_TRUE(b->batching());  // a failure is not a reason to stop batching
}

TEST_F(DirectoryBatcherTest, AMalformedAnswerFailsEveryCheck) {
  auto b = make(1);
  submit(*b, "s1", {"user1@example.com"});
  submit(*b, "s2", {"user2@example.com"});
  submit(*b, "s3", {"user3@example.com"});
  complete_batch(0);
  auto resp = answer(transport_->batches[1].request);
  resp.mutable_results()->RemoveLast();  // one result missing
  transport_->batches[1].done(grpc::Status::OK, resp);
  EXPECT_FALSE(results_["s2"].ok);
  EXPECT_FALSE(results_["s3"].ok);
}

TEST_F(DirectoryBatcherTest, ACheckWithItsOwnErrorFailsAlone) {
  auto b = make(1);
  submit(*b, "s1", {"user1@example.com"});
  submit(*b, "s2", {"user2@example.com"});
  submit(*b, "s3", {"user3@example.com", "user4@example.com"});
  complete_batch(0);
  auto resp = answer(transport_->batches[1].request);
  resp.mutable_results(0)->set_status_code(grpc::StatusCode::DEADLINE_EXCEEDED);
  resp.mutable_results(0)->set_status_message("deadline passed before the lookup");
  resp.mutable_results(1)->mutable_response()->mutable_verdicts()->RemoveLast();  // 1 verdict for 2 recipients
  transport_->batches[1].done(grpc::Status::OK, resp);
  EXPECT_FALSE(results_["s2"].ok);
  EXPECT_NE(results_["s2"].error.find("deadline passed"), std::string::npos);
  EXPECT_FALSE(results_["s3"].ok);
  EXPECT_NE(results_["s3"].error.find("1 verdicts for 2"), std::string::npos);
}

TEST_F(DirectoryBatcherTest, AnOlderDirectoryGetsOneCheckRecipientsCallPerCheck) {
  auto b = make(1);
  submit(*b, "s1", {"user1@example.com"});
  submit(*b, "s2", {"nobody2@example.com"});
  transport_->batches[0].done(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method CheckBatch"), {});
  EXPECT_FALSE(b->batching());
  // The failed batch and the queue are re-sent as CheckRecipients, requests intact.
  ASSERT_EQ(transport_->ones.size(), 2u);
  EXPECT_EQ(transport_->ones[0].request.session().session_id(), "s1");
  EXPECT_EQ(transport_->ones[0].request.recipients(0), "user1@example.com");
  EXPECT_EQ(transport_->ones[1].request.session().session_id(), "s2");
  submit(*b, "s3", {"user3@example.com"});  // from now on, directly
  ASSERT_EQ(transport_->ones.size(), 3u);
  EXPECT_EQ(transport_->batches.size(), 1u);
  for (auto& one : transport_->ones) one.done(grpc::Status::OK, answer(one.request));
  ASSERT_TRUE(results_["s1"].ok);
  EXPECT_EQ(results_["s1"].verdicts[0].decision, Verdict::Decision::kAccept);
  ASSERT_TRUE(results_["s2"].ok);
  EXPECT_EQ(results_["s2"].verdicts[0].decision, Verdict::Decision::kReject);
  EXPECT_TRUE(results_["s3"].ok);
}

TEST_F(DirectoryBatcherTest, InFlightZeroMeansNoBatching) {
  auto b = make(0);
  submit(*b, "s1", {"user1@example.com"});
  submit(*b, "s2", {"user2@example.com"});
  EXPECT_FALSE(b->batching());
  EXPECT_EQ(transport_->batches.size(), 0u);
  ASSERT_EQ(transport_->ones.size(), 2u);
  transport_->ones[1].done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"), {});
  EXPECT_FALSE(results_["s2"].ok);
}

}  // namespace
TEST_F(DirectoryBatcherTest, AChecksNeedingAProbeIsAskedAgainAloneWithItsDeadline) {
  auto b = make(1);
  submit(*b, "s1", {"user1@example.com"});
  submit(*b, "s2", {"user2@callout.example", "nobody2@callout.example"}, std::chrono::milliseconds(700));
  submit(*b, "s3", {"nobody3@example.com"});
  complete_batch(0);
  ASSERT_EQ(transport_->batches.size(), 2u);
  EXPECT_EQ(sessions_of(1), (std::vector<std::string>{"s2", "s3"}));
  // The directory answers s3 and sends s2 back: it needs a callout probe.
  auto resp = answer(transport_->batches[1].request);
  resp.mutable_results(0)->clear_response();
  resp.mutable_results(0)->set_ask_alone(true);
  transport_->batches[1].done(grpc::Status::OK, resp);
  ASSERT_TRUE(results_["s3"].ok);  // not held up by s2's probe
  EXPECT_EQ(results_["s3"].verdicts[0].decision, Verdict::Decision::kReject);
  EXPECT_FALSE(results_.count("s2"));
  // s2 goes out as its own CheckRecipients call, request intact, with its own deadline.
  ASSERT_EQ(transport_->ones.size(), 1u);
  EXPECT_EQ(transport_->ones[0].request.session().session_id(), "s2");
  ASSERT_EQ(transport_->ones[0].request.recipients_size(), 2);
  EXPECT_EQ(transport_->ones[0].request.recipients(1), "nobody2@callout.example");
  EXPECT_EQ(transport_->ones[0].deadline, now_ + std::chrono::milliseconds(700));
  EXPECT_EQ(b->in_flight(), 0u);  // the batch slot is free meanwhile
  transport_->ones[0].done(grpc::Status::OK, answer(transport_->ones[0].request));
  ASSERT_TRUE(results_["s2"].ok);
  ASSERT_EQ(results_["s2"].verdicts.size(), 2u);
  EXPECT_EQ(results_["s2"].verdicts[0].decision, Verdict::Decision::kAccept);
  EXPECT_EQ(results_["s2"].verdicts[1].decision, Verdict::Decision::kReject);
  EXPECT_TRUE(b->batching());
}

}  // namespace doorman::edge
