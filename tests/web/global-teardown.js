"use strict";
const { tearDown } = require("./servers");
module.exports = async () => { await tearDown(); };
