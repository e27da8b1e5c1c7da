// The editor's state, shared by its modules.
import { config } from "./config.js";

const given = config || {};

export const state = {
  revision: given.revision === undefined ? null : given.revision,  // the draft's revision on the server (null: none)
  publishable: !!given.publishable,
  depth: 0,          // how many steps of the undo stack lead to the diagram on screen
  savedDepth: 0,     // the depth of the diagram the server has (-1: no longer reachable by undo or redo)
  saving: null,      // the save under way (a promise), if any
  leaving: false,    // the page is being left on purpose (publishing, uploading, discarding): no unsaved-changes warning
  timerKinds: {},    // the timer type chosen for a timer whose value is still empty, by element id
  ready: false       // the diagram is open (imported) in the modeler
};
