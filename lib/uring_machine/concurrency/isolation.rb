# frozen_string_literal: true

# Where the failure of a fiber that spin(isolated: true) started goes: not to its parent (an
# accept loop must not die of one client), but to the supervisor nearest up the tree, as an
# :error event, or, with none, to $stderr.

module UringMachine
  # Called (by the extension) as an isolated fiber ends with a failure that nobody joined.
  def self.__isolated_failure__(fiber, error)
    ancestor = fiber.parent
    while ancestor
      watcher = __watcher_of__(ancestor)
      return watcher.descendant_failed(fiber, error) if watcher

      ancestor = ancestor.parent
    end
    $stderr.write("#{fiber.inspect} failed (isolated: its parent goes on):\n#{error.full_message(highlight: false)}")
  end
end
