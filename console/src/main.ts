import './style.css';
import { controlPanel } from './control-panel.js';
import { notifyPanel } from './notify-panel.js';
import { statsPanel } from './stats-panel.js';

document.querySelector('#app')!.append(statsPanel(), notifyPanel(), controlPanel());
