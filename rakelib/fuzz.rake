# frozen_string_literal: true

# rake test:fuzz    the seeded fuzz campaign of test/fuzz (see test/fuzz/campaign.rb): record
#                   streams, sleeps, accept loops, forks and odd durations, each part in worker
#                   processes; fails if it finds any defect. UM_FUZZ_SEED replays a run,
#                   UM_FUZZ_SECONDS bounds it (default 180), UM_FUZZ_PARTS and UM_FUZZ_EPISODE
#                   narrow it to one part or episode.
namespace :test do
  desc "Compile, then run the fuzz campaign (UM_FUZZ_SEED, UM_FUZZ_SECONDS=180, UM_FUZZ_PARTS, UM_FUZZ_EPISODE)"
  task fuzz: :compile do
    ruby("-w", "test/fuzz/campaign.rb") do |ok, _|
      abort "test:fuzz: defects found (see above)" unless ok
    end
  end
end
